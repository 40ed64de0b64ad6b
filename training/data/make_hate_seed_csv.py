"""Regenerate ``hate_seed.csv`` (see PROVENANCE.md): hand-written sentences, some with a group
slot, filled from one group list for both labels, seeded.

Usage: ``python training/data/make_hate_seed_csv.py > training/data/hate_seed.csv``

``{G}`` is a group's plural ("Muslims", "gay people"), ``{P}`` one member with its article
("a Muslim", "a gay man"). A frame with a slot is written out for two groups whose texts fall in
the same split (``training.split``), so near-twins never sit on both sides of the split. Both
labels draw their groups by the same round robin over the same list, so no group word carries
the label. A seeded few rows of each label get one letter swap (a typo).
"""

from __future__ import annotations

import csv
import random
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from training.split import split_of

SEED = 2121
TYPO_RATE = 0.08
FILLS_PER_FRAME = 2

# (plural, one member with its article), by protected attribute
GROUPS: tuple[tuple[str, str], ...] = (
    # religion
    ("Muslims", "a Muslim"),
    ("Jews", "a Jewish woman"),
    ("Jewish people", "a Jewish man"),
    ("Christians", "a Christian"),
    ("Hindus", "a Hindu"),
    ("Sikhs", "a Sikh"),
    ("Catholics", "a Catholic"),
    ("atheists", "an atheist"),
    ("Buddhists", "a Buddhist"),
    ("Mormons", "a Mormon"),
    # ethnicity and nationality
    ("Mexicans", "a Mexican"),
    ("Chinese people", "a Chinese woman"),
    ("Arabs", "an Arab"),
    ("Somalis", "a Somali"),
    ("Indians", "an Indian"),
    ("Pakistanis", "a Pakistani"),
    ("Roma", "a Romani woman"),
    ("Polish people", "a Polish guy"),
    ("Nigerians", "a Nigerian"),
    ("Haitians", "a Haitian"),
    ("Syrians", "a Syrian"),
    ("Puerto Ricans", "a Puerto Rican"),
    ("Koreans", "a Korean"),
    ("Filipinos", "a Filipino"),
    ("Irish people", "an Irish woman"),
    ("Ukrainians", "a Ukrainian"),
    ("Turks", "a Turkish guy"),
    ("Vietnamese people", "a Vietnamese woman"),
    ("Palestinians", "a Palestinian"),
    ("Albanians", "an Albanian"),
    # race
    ("Black people", "a Black man"),
    ("white people", "a white guy"),
    ("Asians", "an Asian woman"),
    ("Asian people", "an Asian man"),
    ("Latinos", "a Latino"),
    ("Hispanics", "a Hispanic woman"),
    ("Native Americans", "a Native American"),
    ("Aboriginal people", "an Aboriginal man"),
    ("mixed-race people", "a mixed-race woman"),
    # sexual orientation
    ("gay people", "a gay man"),
    ("gay men", "a gay dad"),
    ("lesbians", "a lesbian"),
    ("bisexual people", "a bisexual woman"),
    ("queer people", "a queer person"),
    ("LGBT people", "an LGBT person"),
    # gender identity
    ("trans people", "a trans person"),
    ("trans women", "a trans woman"),
    ("trans men", "a trans man"),
    ("nonbinary people", "a nonbinary person"),
    # gender
    ("women", "a woman"),
    ("men", "a man"),
    # disability
    ("disabled people", "a disabled person"),
    ("autistic people", "an autistic adult"),
    ("deaf people", "a deaf person"),
    ("blind people", "a blind person"),
    ("wheelchair users", "a wheelchair user"),
    ("people with Down syndrome", "someone with Down syndrome"),
    ("people with schizophrenia", "someone with schizophrenia"),
    # age
    ("old people", "an old man"),
    ("elderly people", "a retiree"),
    ("pensioners", "a pensioner"),
    # immigration status
    ("immigrants", "an immigrant"),
    ("refugees", "a refugee"),
    ("migrants", "a migrant"),
    ("asylum seekers", "an asylum seeker"),
    ("foreigners", "a foreigner"),
)

HATE: tuple[str, ...] = (
    # dehumanisation
    "{G} are vermin and everyone knows it",
    "{G} are not fully human, they just look like us",
    "honestly {G} are a disease on this country",
    "{G} breed like rats and take over every neighbourhood they touch",
    "Every city that lets {G} in ends up with an infestation.",
    "{G} are parasites living off the rest of us",
    "You can't reason with {G}, they're basically animals",
    "{G} are a cancer that spreads wherever they settle",
    "{G} are subhuman trash, sorry not sorry",
    "Scientifically speaking, {G} are a lesser species.",
    "{G} = cockroaches. change my mind",
    "{G} are like a plague of locusts on our towns",
    "the problem with {G} is they are more beast than person",
    "{G} multiply like insects, look at the numbers",
    "{G} are a rot inside this society",
    "{G} should be treated like the livestock they are",
    "{G} carry filth everywhere they go",
    "Our town has a {G} problem, like an ant problem but worse",
    "{G} are leeches, every single one of them",
    "{G} are genetic garbage and should not have kids",
    "{G} are an invasive species #protectourborders",
    "{G} are barely more than apes",
    "{G} are a virus and this country needs a cure",
    "{G} are the mold in the walls of this nation",
    "{G} are walking germs",
    "{G} are sub-human, I said what I said",
    "{G} crawl out of their holes every summer",
    "They let {G} swarm in and now the whole street stinks of them",
    "{G} are pests. You don't negotiate with pests.",
    # exclusion and expulsion
    "{G} should all be deported, no exceptions",
    "{G} don't belong here and never will",
    "send {G} back where they came from",
    "{G} need to be kicked out of this country for good",
    "No {G} should be allowed in our neighbourhood",
    "I would never rent to {G}, keep them out",
    "{G} should be banned from entering the country",
    "Our schools would be better without {G} in them",
    "{G} should go back to their own countries #sendthemback",
    "Keep {G} out of our clubs, our gyms and our streets",
    "{G} are not welcome here, pack your bags",
    "This country was never meant for {G}.",
    "Deport {G}. All of them. Today.",
    "{G} should be kept in their own part of town, away from decent folk",
    "Why do we let {G} live among normal people?",
    "{G} need to be removed from every workplace",
    "We need a country with zero {G}",
    "There is no place for {G} in a civilised nation",
    "{G} should be barred from public office",
    "{G} out! #takebackourcountry",
    "Businesses should have the right to refuse {G} at the door",
    "{G} belong somewhere far away from our kids",
    "{G} should be stripped of citizenship and shipped out",
    "Every last one of the {G} should leave, they ruin everything",
    "{G} should be made to wear badges so we know who they are",
    # denial of rights
    "{G} should not be allowed to vote",
    "{G} shouldn't have the same rights as real citizens",
    "{G} should never be allowed to adopt children",
    "Why should {G} get healthcare paid by our taxes?",
    "Ban {G} from teaching in our schools",
    "{G} should not be allowed to marry, period",
    "{G} don't deserve equal pay or equal anything",
    "{G} should be forbidden from owning property here",
    "{G} have no business being doctors or judges",
    "Take away the right of {G} to protest, they abuse it",
    "It should be legal to fire {G} for what they are",
    "{G} should not be allowed near children, ever",
    "No jobs for {G} until every real local has one",
    "{G} should have to register with the police",
    "Revoke the visas of all {G} now",
    "{G} should not be allowed to serve in the military",
    # inferiority
    "{G} are just less intelligent, it's biology",
    "{G} are inferior in every way that matters",
    "{G} can't think for themselves",
    "Everyone knows {G} have lower IQs",
    "{G} are born lazy and stay lazy",
    "{G} are morally defective as a group",
    "{G} have contributed nothing to civilisation",
    "{G} are a burden and always will be",
    "{G} are too stupid to run their own lives",
    "Face it, {G} are a lower class of people",
    "{G} are unfit to raise children",
    "Hiring {G} is how you ruin a company",
    "{G} are naturally dishonest, it's in their blood",
    "{G} are mentally unfit to hold any responsibility",
    "{G} are the least useful people on the planet",
    "a country full of {G} is a country going backwards",
    "{G} should know their place, which is beneath us",
    "{G} are just broken people who need to be hidden away",
    "{G} are a drain on every system they touch",
    "I'm not saying {G} are worthless. Actually yes I am.",
    "{G} are worth less than the dirt on my shoes",
    "{G} are defective copies of real humans",
    # conspiracies
    "{G} secretly control the banks and the media",
    "{G} are plotting to replace us, wake up",
    "The great replacement is real and {G} are the tool",
    "{G} are behind every war, do your research",
    "{G} are infiltrating our government one seat at a time",
    "{G} are coming here on purpose to outbreed us",
    "{G} spread diseases on purpose, the news won't tell you",
    "{G} run a hidden network that decides who gets jobs",
    "It's no accident there are so many {G} now. It was planned.",
    "{G} are a fifth column waiting for their moment",
    "{G} are poisoning our culture and they know exactly what they're doing",
    "Follow the money and you'll always find {G} behind it",
    "{G} are recruiting kids, that's the whole agenda",
    # stereotyped contempt
    "{G} are all criminals, look at the stats",
    "Never trust {G}, they will cheat you every time",
    "{G} ruin every neighbourhood they move into",
    "Typical {G}, always begging for handouts",
    "Of course it was {G} again. It's always them.",
    "{G} are dirty, loud and useless",
    "{G} only come here to steal and scrounge",
    "Can't stand {G}, they're all the same",
    "{G} are freeloaders and liars, every one",
    "I cross the street when I see {G}. Everyone should.",
    "{G} make everything worse just by existing",
    "{G} are the reason this town went downhill",
    "{G} are disgusting and I'm tired of pretending otherwise",
    "{G} are all groomers and predators",
    "{G} are a national embarrassment",
    "{G} bring nothing but crime and noise",
    "ugh {G} everywhere now, this place is ruined",
    "{G}? More like professional victims",
    "{G} can't be trusted with anything",
    "Good luck finding {G} who aren't thieves",
    "{G} are a mistake of nature",
    # coded phrasing and tweets
    "we all know what {G} are. #notoneofus",
    "Just noticed how many {G} moved in. Time to sell before it's too late. #whiteflight",
    "{G} again... when will people wake up #savethewest",
    "Remember who {G} really are #dotherresearch",
    "{G} in my feed again. Disgusting. #purity",
    "#stoptheinvasion {G} are not refugees they are invaders",
    "Diversity is just a nice word for flooding us with {G}",
    "a few {G} is a problem, a hundred {G} is an occupation",
    "Breaking: {G} still a plague on society, more at 11",
    "they call it tolerance, I call it letting {G} rot the country from inside",
    "Clean streets, clean towns, no {G}. Simple.",
    "A normal society doesn't have {G} in it",
    "{G} have no culture, only grievances",
    "Nobody asked for more {G}. Nobody.",
    "{G} are why we can't have nice things",
    "Imagine thinking {G} are people like us lol",
    "{G} lol. say no more",
    "{G} are a lower order of being and that's not a joke",
    "Someone should tell {G} they were never wanted here",
    "Our ancestors didn't build this nation so {G} could take it",
    # pseudo-formal
    "It is an established fact that {G} are intellectually inferior to the native population.",
    "Empirical evidence shows that {G} are incapable of integrating into a civilised society.",
    "The presence of {G} degrades the moral fabric of any community.",
    "Policy should reflect the reality that {G} are a net negative to the nation.",
    "{G} constitute a biological threat to the purity of our people.",
    "History demonstrates that {G} are unsuited to self-government.",
    "One must conclude that {G} are parasitic by nature.",
    "The continued admission of {G} represents a slow national suicide.",
    "{G} should be excluded from public life for the good of society.",
    "In any rational order, {G} would hold no rights at all.",
    "It is a matter of hygiene to keep {G} apart from the general population.",
    "Statistically, {G} are a criminal underclass and should be treated as such.",
    # personal contempt toward members
    "I don't care how nice {P} seems, they're still vermin underneath",
    "My landlord just rented to {P}. Moving out, I refuse to live next to that.",
    "There's {P} working at my bank now. Closing my account.",
    "Never hire {P}, they drag the whole team down",
    "Saw {P} at the park today. Ruined my afternoon honestly",
    "Got seated next to {P} on the train, had to change cars, the smell of these people",
    "If my kid ever brings home {P}, they're out of the house",
    "{P} moved in next door. There goes the neighbourhood.",
    "My new doctor is {P}. Asking for a real one.",
    "You can dress {P} up but it's still an animal underneath",
    "{G} are a stain on this nation's history and its future",
    "Honestly {G} should just disappear from public view, nobody wants to see them",
    "Landlords are right to turn away {G}, they wreck every flat",
    "Why are {G} even allowed to have children? Asking seriously",
    "{G} are a walking health hazard #cleanstreets",
    "tbh {G} are closer to dogs than to people",
    "Our party will make sure {G} never get citizenship",
    "{G} should be kept out of hospitals meant for real citizens",
    (
        "I've lived in this town my whole life and I've watched it go downhill the moment {G}"
        " started moving in, they are a blight and they should be pushed out before there is "
        "nothing left"
    ),
    (
        "Let me be clear since nobody else will: {G} are not our equals, they never were, and"
        " any government that pretends otherwise is betraying the people who actually built "
        "this country"
    ),
    (
        "People keep telling me to be tolerant, but tolerance has limits, and {G} are the "
        "kind of rot you cut out of a society before it spreads to the healthy parts"
    ),
    (
        "My grandfather warned me about {G} decades ago and he was right, they lie, they "
        "cheat, they leech off honest workers, and they should be sent packing, every last "
        "one"
    ),
)

HATE_PLAIN: tuple[str, ...] = (
    "they breed like rabbits and take everything we built",
    "Those people are not human, they're animals in clothes",
    "They don't belong here. Never did, never will.",
    "send them all back, every single one",
    "Their kind should not be allowed to vote or hold office",
    "They are a disease and our country is sick because of them",
    "People like that are subhuman and I'm done pretending otherwise",
    "Keep their kind away from our schools",
    "they're parasites, they never worked a day in their lives",
    "Their whole race is inferior, the facts speak for themselves",
    "they're vermin crawling into our cities",
    "Your people ruin everything you touch. Go home.",
    "You people should not have the same rights as us",
    "Go back to your own country, nobody wants you here",
    "Your kind aren't welcome in this town",
    "Funny how crime goes up whenever their lot moves in",
    "Their religion is a sickness and its followers are the carriers",
    "People who pray like that should be banned from the country",
    "Men like that shouldn't be allowed near kids, they're all perverts",
    "People who are born like that are mistakes and should be hidden away",
    "Their kind are a drain on the system and nothing more",
    "foreign filth go home",
    "They're an infestation, we need to get them out",
    "Every one of them is a criminal waiting to happen",
    "They are less than human and deserve less than us",
    "These people are like rats, they breed in the dark and spread",
    "Nobody wants your kind here. Leave.",
    "the invaders keep coming and the govt just lets them #closetheborders",
    "Their blood is tainted and so are their children",
    "they're all the same, dirty and lazy",
    "People who live in that part of the world are basically savages",
    "Marrying outside your race is how a nation dies",
    "A woman's opinion is worth half a man's, at best",
    "Women are too emotional to vote, take it away from them",
    "Cripples are a waste of resources and should be kept out of sight",
    "Old folks are useless mouths, stop wasting money on them",
    "Anyone who speaks with that accent should be sent back",
    "They smell, they steal and they lie. Every one of them.",
    "If you are one of them, you are not a citizen in my eyes",
    "That lifestyle is a mental disease and its people should be locked away from society",
    "Their children should not be allowed in our schools",
    "Their women breed like livestock, it's a demographic weapon",
    "these people r animals smh",
    "Those born that way are defective and should not be allowed to marry",
    "We don't need their kind polluting our bloodline",
    "They are a lower form of life, no offense",
    "Immigration has turned our cities into zoos",
    "A nation is its people, and they will never be our people",
)

BENIGN: tuple[str, ...] = (
    # news and reports
    "{G} gathered downtown on Saturday for the annual cultural festival",
    "A new survey asked {G} about their experiences with local healthcare.",
    "The city council met with {G} to discuss housing in the east district",
    "Researchers interviewed {G} across five states about work and family life",
    "A museum exhibit on the history of {G} in this region opens next month",
    "The report found {G} face longer wait times for job interviews",
    "{G} make up about a tenth of the town's population, according to the census",
    "Local library launches a reading series by and about {G}",
    "A documentary about {G} in the 1960s premiered at the film festival",
    "The mayor thanked {G} for their volunteer work after the floods",
    "New data shows {G} are starting small businesses at record rates",
    "The school district added a course on the history of {G}",
    "{G} organised a food drive that fed 300 families this winter",
    "The charity opened a legal aid clinic for {G} on weekends",
    "Police are investigating graffiti that targeted {G} near the station",
    "A study on the mental health of {G} was published this week",
    "Voter turnout among {G} rose in the last election",
    "The radio show invited {G} to share stories from their childhood",
    "Hospitals are training staff to better support {G}",
    "The council approved funding for a community centre serving {G}",
    "Census: how many {G} live in the county?",
    "The newspaper profiled three {G} who run the farmers market",
    # personal statements
    "As {P}, I love seeing more people like me on TV",
    "As {P}, I'm happy to answer questions if you're curious",
    "I'm {P} and I just finished my first marathon!",
    "I'm {P} and honestly my neighbours have been wonderful",
    "As {P}, the hardest part of moving here was the paperwork, not the people",
    "I am {P} and a nurse, and I love my job",
    "Speaking as {P}, that article got a lot of things right",
    "As {P} I didn't expect to cry at this movie but I did",
    "I'm {P}, ask me anything about growing up here",
    "Being {P} in a small town taught me a lot about patience",
    "My roommate is {P} and the best cook I know",
    "My best friend is {P} and we've been inseparable since school",
    "My first boss was {P} and taught me how to run a shop",
    "My new coworker is {P} and super helpful with the onboarding",
    "Our new neighbour is {P} and brought us cookies on moving day",
    "My teacher this year is {P} and makes chemistry fun",
    "As {P}, I want to thank everyone who showed up to the vigil",
    "I met {P} at the climbing gym and we now train together",
    "proud to be {P} and proud of this community",
    "as {P} i can confirm the pizza at that place is elite",
    # questions
    "What are some good books written by {G}?",
    "Are there any support groups for {G} in the area?",
    "How can I make my workplace more welcoming for {G}?",
    "Does anyone know a good podcast hosted by {G}?",
    "What holidays do {G} in your family celebrate?",
    "Is there a scholarship fund for {G} at this university?",
    "How did {G} shape the music of the 20th century?",
    "Which charities actually help {G}? Want to donate this year",
    "Are there any {G} in this group who want to start a book club?",
    "What's the best way to learn about the history of {G}?",
    "Any recommendations for films made by {G}?",
    "Why were {G} excluded from that law back then? Trying to understand the history",
    # history and education
    "In the 19th century, {G} built much of the railway through this valley",
    "Our history class covered how {G} were treated during the war",
    "The exhibit traces how {G} fought for the right to vote",
    "{G} have lived in this city for more than two hundred years",
    "Grandma told us how {G} helped rebuild the town after the fire",
    "The textbook finally includes the contributions of {G}",
    "The memorial honours {G} who were persecuted in the 1930s",
    "Historians say {G} were key to the early labour movement",
    "{G} have a long tradition of poetry and storytelling",
    # recipes, food, culture
    "Tried a stew recipe some {G} in my building shared with me, absolutely delicious",
    "The bakery run by {G} on Elm Street has the best bread in town",
    "{G} at our church hosted a potluck and the food was amazing",
    "Cooking class tonight: traditional dishes taught by {G} from the community centre",
    "My favourite cookbook is a collection of recipes from {G}",
    "Street food market this weekend with stalls from {G} all over the city",
    # community events
    "The community centre is hosting a picnic for {G} and their families on Sunday",
    "Join us for a panel with {G} talking about careers in tech",
    "Our club is holding a welcome night for {G} new to the area",
    "Volunteers needed: mentoring program for {G} starting in March",
    "The parade celebrating {G} is this Saturday, bring water and sunscreen",
    "Free legal workshop for {G} at the library, 6pm Thursday",
    "Sports day for {G} and allies, everyone welcome!",
    "The choir made up of {G} performed at the town hall last night",
    "Open house at the centre for {G} this Friday, come say hi",
    "Fundraiser for {G} affected by the storm raised $12,000",
    "Game night at the youth centre, {G} and friends welcome #community",
    "Loved the art show by {G} downtown #supportlocal",
    "{G} and their allies marched peacefully through the city today #equality",
    # positive and neutral statements
    "{G} deserve the same respect as everyone else",
    "{G} are part of what makes this city great",
    "{G} are just people, like you and me",
    "{G} have every right to live here in peace",
    "So many {G} have made this neighbourhood a better place",
    "I've learned so much from {G} in my life",
    "{G} are as varied as any other group of people",
    "{G} should have equal access to jobs and housing",
    "Glad to see {G} represented in the new cabinet",
    "There are {G} in every profession, from teachers to surgeons",
    "{G} should be able to walk down the street without fear",
    "{G} are welcome here, always",
    "{G} are our neighbours, coworkers and friends",
    "{G} have the same hopes as anyone: work, family, a quiet life",
    "We have many {G} on our team and they are great colleagues",
    "Respect for {G} costs nothing",
    "{G} in our town run half the small shops and everyone loves them",
    "{G} belong here just as much as anyone else",
    "Treating {G} fairly is the bare minimum",
    "{G} have the right to vote, marry and raise children like anyone",
    # counter-speech quoting or condemning hate
    "Someone wrote '{G} are vermin' on the bus stop. I reported it and the city cleaned it up.",
    "Calling {G} animals is dehumanising and it has to stop",
    "People saying {G} should be deported are just repeating old propaganda",
    "It's disgusting how people talk about {G} online. They are human beings.",
    "No, {G} are not 'invading' anything. They are people looking for a better life.",
    "The claim that {G} are less intelligent is racist pseudoscience and has been debunked",
    "Reported a post calling {G} parasites. Please report it too.",
    "If you think {G} don't belong here, you need to meet some",
    "Hate against {G} has no place on this platform",
    "Saying {G} should lose the right to vote is an attack on democracy",
    "Stop spreading conspiracy theories about {G}, they are false",
    "Historically, calling {G} 'vermin' came right before persecution. Words matter.",
    "The speaker claimed {G} were 'a disease'. The audience walked out.",
    "My uncle said {G} should go back where they came from. I told him he was wrong.",
    "Those 'just asking questions' posts about {G} are hate speech dressed up",
    "We stand with {G} against the harassment they have faced this week",
    "A teacher was fired for telling students that {G} are inferior. Good.",
    "Dehumanising {G} is the first step toward worse things. Call it out.",
    "The mod team removed a thread calling {G} subhuman. Thank you, mods.",
    "There's a myth that {G} are all criminals. The data says otherwise.",
    (
        "The leaflet said {G} should be banned from the country. We tore them down and put up"
        " welcome posters."
    ),
    "When someone calls {G} parasites, ask them what they've actually done for their town",
    "Anyone claiming {G} control the banks is repeating a lie",
    "This account keeps posting that {G} are 'replacing' us. Blocked and reported.",
    "Being {P} is not a crime, and saying they are all criminals is bigotry",
    "Pretty sad that in 2025 people still think {G} shouldn't have equal rights",
    # pseudo-formal neutral
    "The committee recommends improving access to public services for {G}.",
    "This paper examines employment outcomes among {G} between 2000 and 2020.",
    "The policy aims to ensure that {G} are not discriminated against in housing.",
    "The hearing included testimony from {G} about workplace accommodations.",
    "Survey results indicate that {G} value community safety and good schools.",
    "The law protects {G} from being denied service on the basis of who they are.",
    "Data on {G} in rural areas remains limited, the authors note.",
    "The foundation awards grants to organisations led by {G}.",
    # casual
    "shoutout to the {G} at my gym who always spot me",
    "lol the {G} in my group chat are the funniest people i know",
    "{G} at the farmers market had the best tomatoes today",
    "omg the {G} on the team carried us in the quiz tonight",
    "ngl the {G} book club is the best thing in this town",
    "met some {G} at the concert last night, really nice crowd",
    "{G} from the neighbourhood cleaned up the river bank this morning",
    "Thread: amazing inventions by {G} that you use every day",
    "Reminder that {G} have been part of this country's story from the start",
    "Our hiking group has lots of {G} and we're always looking for new members",
    "The debate tonight will include a question on the rights of {G}",
    "Teachers shared tips on supporting {G} in the classroom and on campus",
    "A new mural downtown celebrates {G} who shaped the city",
    "Wedding season! So many {G} in my family getting married this year",
    "The bus company consulted {G} before redesigning the stations",
    "The novel follows two {G} who open a bookshop by the sea",
    "Proud of the {G} on our city council this year",
    "Happy to report the {G} in our building started a shared garden",
    "The court ruled that {G} cannot be refused service at restaurants",
    "My local paper ran a lovely series on {G} who have lived here for decades",
    "Volunteering with {G} at the shelter was the best part of my year",
    "Why do people keep saying {G} are a threat? They are our friends and family.",
    "Anyone who says {G} are subhuman has clearly never met one. Shameful.",
    "Read a horrible comment calling {G} a plague. Remember: they are people.",
    "A politician said {G} should not be allowed to vote. The backlash was swift.",
    "It's 100% false that {G} spread disease. Please stop sharing that post.",
    "The hate mail said {G} were 'invaders'. The school answered with a welcome festival.",
    "That old claim that {G} are lazy has never been true",
    "{G} and their kids are always welcome at our table",
    "{G} shared their stories at the town hall and the room listened",
    "The community radio now has a weekly show made by {G}",
    "honestly the {G} at my uni are the kindest people i've met",
    "The clinic hired interpreters so {G} can get care in their own language",
    "A new scholarship supports {G} studying medicine",
    "The local team signed two {G} and the fans love them",
    "As {P}, I'm grateful for the neighbours who checked on me during the storm",
    "As {P}, I just want to say this thread made my day",
    "I'm {P} and I run a small coffee shop, come by sometime",
    "Hi everyone, I'm {P} and new to the area. Any good walking trails?",
    (
        "I've lived in this town my whole life and I've watched it get better since {G} "
        "started moving in, new shops, new festivals, and neighbours who actually say hello "
        "to each other"
    ),
    (
        "Let me be clear since someone has to: {G} are our equals, they always were, and any "
        "politician who suggests otherwise is betraying the people who actually built this "
        "country together"
    ),
    (
        "People keep posting that {G} are a rot that needs to be cut out, and every time I "
        "see it I report it, because that is exactly the language that came before the worst "
        "chapters of history"
    ),
    (
        "My grandmother told me stories about the {G} who sheltered her family during hard "
        "years, and I grew up knowing that kindness has nothing to do with where you come "
        "from"
    ),
)

BENIGN_PLAIN: tuple[str, ...] = (
    "They moved here ten years ago and now run the best bakery in town",
    "They are people, not a problem to be solved",
    "They belong here as much as anyone who was born here",
    "They just want to live quietly and raise their kids like everyone else",
    "Calling them animals says more about you than about them",
    "Their festival last weekend was the highlight of my summer",
    "They taught me how to cook rice properly, I owe them forever",
    "Their community centre runs free English classes every Tuesday",
    "Their grandparents helped build this town",
    "People like that are my neighbours and they're great",
    "Nobody deserves to be told to go back where they came from",
    "Comparing people to rats or insects is how persecution starts",
    "Please stop sharing that post that calls them a disease, it's hateful and false",
    (
        "Someone left a note saying 'your kind isn't welcome'. The whole street signed a card"
        " saying they are."
    ),
    "Their language has some of the most beautiful poetry I've read",
    "welcome to the neighbourhood!! so happy you're here",
    "Every human being has the same dignity, whatever their faith or background",
    "My friend's wedding mixed two traditions and it was wonderful",
    "The new mosque, the synagogue and the church are running a joint food bank",
    "Sign language class starts next week, anyone can join",
    "The ramp at the library finally got built, great news for wheelchair access",
    "Pride month events at the library this June include a history talk",
    "Diwali lights on our street look amazing this year",
    "Eid dinner with the neighbours tonight, so much food",
    "Hanukkah candles and latkes at my friend's place, first time trying them",
    "The refugee family on our block just opened a tailoring shop",
    "Immigration paperwork is confusing, happy to help anyone who needs it",
    "My grandmother arrived here with one suitcase and built a whole life",
    "Women's football team won the league, huge congratulations",
    "Our retirement home hosts a music night every Thursday",
    "The autism-friendly cinema screening had the lights up and sound down, loved it",
    "Learned some basic sign language so I can chat with my deaf coworker",
    "Hate speech laws protect people from being targeted for who they are",
    (
        "The phrase 'they breed like rabbits' has been used against many groups and it's "
        "always dehumanising"
    ),
    "Saying a whole group is 'subhuman' is exactly what propaganda did before genocides",
    "I used to believe the immigrant crime myth until I looked at the numbers",
    "No religion makes someone less human",
    "Being gay, straight, trans or anything else doesn't make you more or less of a person",
    "Disabled people have the right to work, vote and live independently",
    "Asking where someone is 'really from' can feel alienating, just so you know",
    "The interfaith dinner brought together over a hundred people",
    "Their music festival drew visitors from all over the country",
    "Our school's cultural day had food from thirty countries",
    "Glad the new hire policy is blind to age, gender and background",
    "This town got so much better when new families moved in",
    "Racism is learned and it can be unlearned",
    "Trans rights are human rights #equality",
    "Refugees welcome #humanity",
)


def typo(text: str, rng: random.Random) -> str:
    """``text`` with two adjacent letters of one longer word swapped."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    word = words[i]
    j = rng.randrange(1, len(word) - 2)
    words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    return " ".join(words)


def fill(frame: str, group: tuple[str, str]) -> str:
    """``frame`` with its slots filled, first letter capitalised where a slot opens it."""
    text = frame.replace("{G}", group[0]).replace("{P}", group[1])
    if frame.startswith("{"):
        text = text[0].upper() + text[1:]
    return text


def rows(
    frames: Sequence[str], plain: Sequence[str], label: str, rng: random.Random
) -> Iterator[tuple[str, str]]:
    """Each frame filled for ``FILLS_PER_FRAME`` groups (round robin, one split), then ``plain``."""
    order = list(GROUPS)
    rng.shuffle(order)
    cursor = 0
    for frame in frames:
        noisy = rng.random() < TYPO_RATE

        def make(group: tuple[str, str], frame: str = frame, noisy: bool = noisy) -> str:
            text = fill(frame, group)
            return typo(text, random.Random(text)) if noisy else text

        first = make(order[cursor % len(order)])
        cursor += 1
        yield first, label
        for _ in range(FILLS_PER_FRAME - 1):
            for step in range(len(order)):
                at = (cursor + step) % len(order)
                text = make(order[at])
                if split_of(text) == split_of(first):
                    here = cursor % len(order)
                    order[here], order[at] = order[at], order[here]
                    cursor += 1
                    yield text, label
                    break
    for text in plain:
        yield (typo(text, rng) if rng.random() < TYPO_RATE else text), label


def main() -> None:
    """Write the CSV to stdout."""
    rng = random.Random(SEED)
    out = list(rows(HATE, HATE_PLAIN, "hate", rng)) + list(
        rows(BENIGN, BENIGN_PLAIN, "benign_identity", rng)
    )
    rng.shuffle(out)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["text", "label"])
    writer.writerows(out)


if __name__ == "__main__":
    main()
