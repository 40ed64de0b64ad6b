"""The producer rules of every modq task, shared by the client's tasks and the worker's: how a
call is checked, routed, admitted and redacted before it is sent."""
