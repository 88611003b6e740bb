"""Generate the small synthetic demo datasets carried in data/demo/ (deterministic; standard library only).

    python scripts/make_demo_data.py            # rewrites data/demo/*.jsonl

A latent quality drives every format, so the pairwise, rated and ranked files agree with each other:
each reply to a question is one of seven kinds, from a polite, relevant, informative answer (best) to a refusal
or an insult (worst). Telling them apart needs what a reward model must learn: relevance to the question
(facts about the right topic), informativeness, and tone. Topics are split between train and test, so the test
set measures generalisation to unseen questions.

Files: pairwise_{train,test}.jsonl ({"prompt", "chosen", "rejected", "margin"}),
rated_{train,test}.jsonl ({"prompt", "response", "score", "helpfulness", "relevance", "politeness"}),
ranked_{train,test}.jsonl ({"prompt", "completions", "ranks"}; rank 0 = best, ties share a rank).
"""

from __future__ import annotations

import json
import os
import random

SEED = 20261123
OUT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "demo")

# (subject, question templates, facts); every fact is a full sentence about the subject.
TOPICS = [
    (
        "tomatoes",
        ["How do I grow tomatoes?", "Any tips for growing tomatoes at home?"],
        [
            "Tomatoes need six to eight hours of direct sun a day.",
            "Water tomato plants deeply about twice a week.",
            "Stake or cage the plants so the fruit stays off the ground.",
        ],
    ),
    (
        "boiled eggs",
        ["How do I boil an egg?", "What is the best way to hard-boil eggs?"],
        [
            "Place the eggs in cold water and bring it to a boil.",
            "Simmer for nine to twelve minutes for a firm yolk.",
            "Cool the eggs in ice water so they peel easily.",
        ],
    ),
    (
        "sleep",
        ["How can I sleep better?", "What helps with falling asleep at night?"],
        [
            "Keep a regular bedtime, even on weekends.",
            "Avoid caffeine in the afternoon and evening.",
            "A cool, dark and quiet bedroom makes sleep easier.",
        ],
    ),
    (
        "running",
        ["How should a beginner start running?", "I want to start jogging. Where do I begin?"],
        [
            "Start with short intervals of running and walking.",
            "Increase your weekly distance by about ten percent.",
            "Good running shoes help prevent injuries.",
        ],
    ),
    (
        "bread",
        ["How do I bake simple bread?", "What do I need to make bread at home?"],
        [
            "Bread needs flour, water, salt and yeast.",
            "Knead the dough until it is smooth and elastic.",
            "Let the dough rise until it doubles in size before baking.",
        ],
    ),
    (
        "houseplants",
        ["How often should I water my houseplants?", "How do I keep indoor plants alive?"],
        [
            "Water most houseplants when the top inch of soil is dry.",
            "Pots need drainage holes so roots do not rot.",
            "Most indoor plants like bright, indirect light.",
        ],
    ),
    (
        "public speaking",
        ["How can I get better at public speaking?", "Any advice for giving a talk?"],
        [
            "Rehearse the talk out loud several times.",
            "Speak slowly and pause between main points.",
            "Know your opening lines by heart to calm your nerves.",
        ],
    ),
    (
        "saving money",
        ["How can I save more money each month?", "What are easy ways to save money?"],
        [
            "Set up an automatic transfer to savings on payday.",
            "Track your spending for a month to find leaks.",
            "Cancel subscriptions you rarely use.",
        ],
    ),
    (
        "learning a language",
        ["What is the best way to learn a new language?", "How do I start learning Spanish?"],
        [
            "Practice a little every day instead of cramming.",
            "Speaking with native speakers builds confidence.",
            "Spaced repetition flashcards help you remember vocabulary.",
        ],
    ),
    (
        "bicycle tires",
        ["How do I fix a flat bicycle tire?", "My bike has a puncture. What should I do?"],
        [
            "Remove the wheel and lever the tire off the rim.",
            "Find the hole by pumping the tube and listening for air.",
            "Patch the hole or fit a new inner tube, then reinflate.",
        ],
    ),
    (
        "coffee",
        ["How do I make good coffee at home?", "Tips for brewing better coffee?"],
        [
            "Use freshly ground beans for the best flavour.",
            "Water just off the boil, around 93 degrees, works well.",
            "A ratio of about one gram of coffee to sixteen grams of water is a good start.",
        ],
    ),
    (
        "job interviews",
        ["How should I prepare for a job interview?", "Any advice before my interview tomorrow?"],
        [
            "Research the company and the role beforehand.",
            "Prepare short stories that show your skills.",
            "Have a few thoughtful questions ready for the interviewer.",
        ],
    ),
    (
        "headaches",
        ["What can I do about a mild headache?", "How do I get rid of a tension headache?"],
        [
            "Drinking water helps when a headache comes from dehydration.",
            "Rest in a quiet, dark room for a while.",
            "See a doctor if headaches are severe or keep coming back.",
        ],
    ),
    (
        "passwords",
        ["How do I choose a strong password?", "What makes a password secure?"],
        [
            "Long passphrases of several random words are hard to guess.",
            "Never reuse a password across sites.",
            "A password manager can create and store unique passwords.",
        ],
    ),
    (
        "rice",
        ["How do I cook rice on the stove?", "What is the right way to cook white rice?"],
        [
            "Rinse the rice until the water runs clear.",
            "Use about one and a half cups of water per cup of rice.",
            "Simmer covered for fifteen minutes, then let it rest.",
        ],
    ),
    (
        "dogs",
        ["How do I house-train a puppy?", "What is the best way to potty train a dog?"],
        [
            "Take the puppy outside after meals and naps.",
            "Reward the puppy right after it goes outside.",
            "Keep a consistent schedule so the puppy learns the routine.",
        ],
    ),
    (
        "stress",
        ["How can I manage stress at work?", "What helps when I feel stressed?"],
        [
            "Short breaks and slow breathing lower stress.",
            "Regular exercise reduces stress over time.",
            "Writing a to-do list can make work feel manageable.",
        ],
    ),
    (
        "composting",
        ["How do I start composting?", "What can go in a compost bin?"],
        [
            "Mix green scraps like vegetable peels with brown material like dry leaves.",
            "Turn the compost pile every week or two to add air.",
            "Do not compost meat or dairy at home.",
        ],
    ),
    (
        "sunburn",
        ["How should I treat a sunburn?", "What helps a sunburn heal?"],
        [
            "Cool the skin with a damp cloth or a cool shower.",
            "Aloe vera gel soothes burned skin.",
            "Drink extra water because sunburn dehydrates you.",
        ],
    ),
    (
        "resumes",
        ["How do I write a good resume?", "Tips for improving my CV?"],
        [
            "Keep the resume to one or two pages.",
            "Describe achievements with numbers where possible.",
            "Tailor the resume to each job you apply for.",
        ],
    ),
    (
        "photography",
        ["How can I take better photos with my phone?", "Tips for phone photography?"],
        [
            "Use natural light and avoid harsh flash.",
            "Follow the rule of thirds when framing.",
            "Clean the camera lens before shooting.",
        ],
    ),
    (
        "chess",
        ["How do I get better at chess?", "What should a chess beginner study?"],
        [
            "Control the centre of the board early.",
            "Develop knights and bishops before moving the queen.",
            "Solve tactics puzzles to spot forks and pins.",
        ],
    ),
    (
        "moving house",
        ["How do I plan a move to a new house?", "Any tips for moving apartments?"],
        [
            "Start packing rooms you use least a few weeks ahead.",
            "Label every box with its room and contents.",
            "Book movers or a van well before moving day.",
        ],
    ),
    (
        "guitar",
        ["How do I start learning guitar?", "What should I practice as a new guitar player?"],
        [
            "Learn a few open chords like G, C and D first.",
            "Practice switching between chords slowly.",
            "Short daily practice builds calluses and skill.",
        ],
    ),
    (
        "car batteries",
        ["How do I jump-start a car?", "My car battery is dead. What do I do?"],
        [
            "Connect red to the dead battery's positive terminal, then to the good battery.",
            "Attach black to the good battery and to bare metal on the dead car.",
            "Start the working car, wait a few minutes, then start the dead one.",
        ],
    ),
    (
        "meditation",
        ["How do I start meditating?", "Is there a simple way to begin meditation?"],
        [
            "Sit comfortably and focus on your breathing.",
            "Start with five minutes a day.",
            "When your mind wanders, gently return to the breath.",
        ],
    ),
    (
        "hiking",
        ["What should I bring on a day hike?", "How do I prepare for a hike?"],
        [
            "Carry enough water and some snacks.",
            "Check the weather forecast before you leave.",
            "Tell someone your route and when you expect to return.",
        ],
    ),
    (
        "spreadsheets",
        ["How do I sum a column in a spreadsheet?", "How do I add up numbers in Excel?"],
        [
            "Type =SUM( and select the cells you want to add.",
            "Close the bracket and press Enter to see the total.",
            "The AutoSum button inserts the formula for you.",
        ],
    ),
    (
        "budgeting",
        ["How do I make a monthly budget?", "What is a simple way to budget?"],
        [
            "List your monthly income and fixed costs first.",
            "Give every remaining euro a job, like savings or food.",
            "Review the budget at the end of each month.",
        ],
    ),
    (
        "painting walls",
        ["How do I paint a room?", "Tips for painting walls at home?"],
        [
            "Cover the floor and tape the edges before painting.",
            "Apply a primer on new or patched walls.",
            "Two thin coats look better than one thick coat.",
        ],
    ),
    (
        "cats",
        ["How do I introduce a new cat to my home?", "How can I help a new cat settle in?"],
        [
            "Give the cat a quiet room of its own at first.",
            "Let the cat explore the house at its own pace.",
            "Keep food, water and the litter box in calm spots.",
        ],
    ),
    (
        "studying",
        ["How can I study more effectively?", "What are good study habits?"],
        [
            "Test yourself instead of only rereading notes.",
            "Spread study sessions over several days.",
            "Remove phone distractions while studying.",
        ],
    ),
    (
        "pancakes",
        ["How do I make pancakes?", "What is a simple pancake recipe?"],
        [
            "Whisk flour, milk, an egg and a pinch of salt.",
            "Cook on a hot, lightly oiled pan.",
            "Flip the pancake when bubbles form on top.",
        ],
    ),
    (
        "first aid for cuts",
        ["How do I treat a small cut?", "What should I do for a minor cut?"],
        [
            "Rinse the cut with clean water.",
            "Press gently with a clean cloth to stop bleeding.",
            "Cover it with a sterile bandage.",
        ],
    ),
    (
        "email etiquette",
        ["How do I write a professional email?", "Tips for writing a formal email?"],
        ["Use a clear subject line.", "Keep the message short and polite.", "End with your name and contact details."],
    ),
    (
        "bees",
        ["How can I help bees in my garden?", "What attracts bees to a garden?"],
        [
            "Plant flowers that bloom in different seasons.",
            "Avoid spraying pesticides on flowering plants.",
            "A shallow dish of water with stones gives bees a place to drink.",
        ],
    ),
    (
        "laundry",
        ["How do I get a stain out of a shirt?", "What removes stains from clothes?"],
        [
            "Treat the stain as soon as possible.",
            "Dab the stain with cold water rather than rubbing.",
            "Use a stain remover before washing.",
        ],
    ),
    (
        "swimming",
        ["How do I learn to swim as an adult?", "Is it too late to learn swimming?"],
        [
            "Start in shallow water where you can stand.",
            "Practice floating on your back to build confidence.",
            "An adult swimming class gives you a coach and a plan.",
        ],
    ),
    (
        "time management",
        ["How can I manage my time better?", "Tips for being more productive?"],
        [
            "Plan the next day the evening before.",
            "Do the most important task first.",
            "Work in focused blocks with short breaks.",
        ],
    ),
    (
        "recycling",
        ["What can I recycle at home?", "How do I recycle properly?"],
        [
            "Rinse food containers before recycling them.",
            "Paper, cardboard, glass and metal cans are usually accepted.",
            "Check the local rules because they differ by town.",
        ],
    ),
    (
        "soup",
        ["How do I make vegetable soup?", "What is an easy soup recipe?"],
        [
            "Soften onions, carrots and celery in oil.",
            "Add stock and chopped vegetables and simmer.",
            "Season with salt and pepper at the end.",
        ],
    ),
    (
        "back pain",
        ["How can I prevent back pain at my desk?", "What helps back pain from sitting?"],
        [
            "Adjust the chair so your feet rest flat on the floor.",
            "Keep the screen at eye level.",
            "Stand up and stretch every half hour.",
        ],
    ),
    (
        "knitting",
        ["How do I start knitting?", "What does a beginner need for knitting?"],
        [
            "Start with medium needles and smooth, light yarn.",
            "Learn the cast on and the knit stitch first.",
            "A simple scarf is a good first project.",
        ],
    ),
    (
        "camping",
        ["How do I set up a tent?", "Tips for a first camping trip?"],
        [
            "Pick flat ground without rocks or roots.",
            "Practice pitching the tent at home first.",
            "Stake the corners and tighten the guy lines.",
        ],
    ),
    (
        "smoke alarms",
        ["How often should I test my smoke alarm?", "How do I maintain smoke detectors?"],
        [
            "Press the test button once a month.",
            "Replace the batteries at least once a year.",
            "Replace the whole alarm about every ten years.",
        ],
    ),
    (
        "presentations",
        ["How do I make good slides?", "Tips for presentation slides?"],
        ["Put one main idea on each slide.", "Use large fonts and few words.", "Prefer simple charts to dense tables."],
    ),
    (
        "birdwatching",
        ["How do I get started with birdwatching?", "What do I need for bird watching?"],
        [
            "A pair of binoculars is the main tool.",
            "A field guide helps identify species.",
            "Early morning is when birds are most active.",
        ],
    ),
    (
        "ironing",
        ["How do I iron a shirt?", "What is the best way to iron clothes?"],
        [
            "Check the label for the right heat setting.",
            "Iron the collar and cuffs first.",
            "Hang the shirt right away to keep it smooth.",
        ],
    ),
    (
        "snoring",
        ["How can I stop snoring?", "What helps reduce snoring?"],
        [
            "Sleeping on your side can reduce snoring.",
            "Avoid alcohol close to bedtime.",
            "See a doctor if you stop breathing during sleep.",
        ],
    ),
    (
        "negotiating salary",
        ["How do I negotiate a higher salary?", "Tips for salary negotiation?"],
        [
            "Research typical pay for the role first.",
            "Let the employer name a number before you do.",
            "Explain the value you bring, not only what you need.",
        ],
    ),
    (
        "baking cookies",
        ["How do I bake chocolate chip cookies?", "Tips for softer cookies?"],
        [
            "Cream the butter and sugar until fluffy.",
            "Chill the dough for softer, thicker cookies.",
            "Take the cookies out while the centres still look soft.",
        ],
    ),
    (
        "backups",
        ["How should I back up my files?", "What is a good backup plan?"],
        [
            "Keep three copies of important files.",
            "Store one backup on a different device.",
            "Keep one copy off-site or in the cloud.",
        ],
    ),
    (
        "allergies",
        ["How can I reduce pollen allergies?", "What helps with hay fever?"],
        [
            "Keep windows closed on high pollen days.",
            "Shower after being outdoors to rinse off pollen.",
            "Antihistamines can ease the symptoms.",
        ],
    ),
    (
        "fishing",
        ["How do I start fishing?", "What does a beginner need to go fishing?"],
        [
            "A simple rod and reel combo is enough to begin.",
            "Check if you need a fishing licence.",
            "Worms are an easy bait for many fish.",
        ],
    ),
    (
        "handwriting",
        ["How can I improve my handwriting?", "Tips for neater handwriting?"],
        [
            "Write slowly and keep letters the same size.",
            "Hold the pen lightly, not tightly.",
            "Practice with lined paper.",
        ],
    ),
    (
        "composting toilets",
        ["How does a composting toilet work?", "Is a composting toilet hard to maintain?"],
        [
            "It separates liquids from solids.",
            "Adding sawdust after each use controls odour.",
            "The finished compost is emptied every few months.",
        ],
    ),
    (
        "tea",
        ["How do I brew green tea?", "What is the right way to make green tea?"],
        [
            "Use water around 80 degrees, not boiling.",
            "Steep green tea for two to three minutes.",
            "Too long a steep makes green tea bitter.",
        ],
    ),
    (
        "winter driving",
        ["How do I drive safely in snow?", "Tips for winter driving?"],
        ["Drive slowly and leave extra distance.", "Brake gently to avoid skidding.", "Winter tyres improve grip."],
    ),
    (
        "potatoes",
        ["How do I make crispy roast potatoes?", "Tips for roasting potatoes?"],
        [
            "Parboil the potatoes for about ten minutes.",
            "Shake them in the pan to rough up the edges.",
            "Roast in hot oil at a high temperature.",
        ],
    ),
    (
        "journaling",
        ["How do I start journaling?", "What should I write in a journal?"],
        [
            "Write for five minutes at the same time each day.",
            "Note three things you are grateful for.",
            "Do not worry about grammar; it is only for you.",
        ],
    ),
]

OPENERS = ["Great question!", "Happy to help.", "Sure, here is what works.", "Good idea to ask.", "Of course."]
CLOSERS = ["Hope this helps!", "Good luck!", "Let me know if you want more detail.", "Enjoy!", ""]
VAGUE = [
    "It depends on a lot of things, really.",
    "There are many opinions about that, so it is hard to say.",
    "Everyone does it differently, so just see what works.",
    "That is a broad topic with no single answer.",
]
REFUSALS = [
    "I can't help with that.",
    "Sorry, I am not able to answer this.",
    "I would rather not answer that question.",
]
RUDE = [
    "That is a silly question. Figure it out yourself.",
    "Why would you even ask that? Look it up.",
    "Ugh, not this again. Use a search engine.",
]

# kind -> (score 1..5, helpfulness, relevance, politeness)
KINDS = {
    "helpful": (5, 5, 5, 5),
    "terse": (4, 4, 5, 3),
    "mixed": (3, 3, 3, 4),
    "vague": (2, 1, 2, 4),
    "off_topic": (2, 2, 1, 4),
    "refusal": (1, 1, 1, 3),
    "rude": (1, 1, 2, 1),
}


def reply(kind: str, topic: tuple, other: tuple, rng: random.Random) -> str:
    facts = rng.sample(topic[2], 2)
    other_facts = rng.sample(other[2], 2)
    if kind == "helpful":
        text = f"{rng.choice(OPENERS)} {facts[0]} {facts[1]} {rng.choice(CLOSERS)}"
    elif kind == "terse":
        text = facts[0]
    elif kind == "mixed":
        text = f"{rng.choice(OPENERS)} {facts[0]} {other_facts[0]}"
    elif kind == "vague":
        text = rng.choice(VAGUE)
    elif kind == "off_topic":
        text = f"{rng.choice(OPENERS)} {other_facts[0]} {other_facts[1]}"
    elif kind == "refusal":
        text = rng.choice(REFUSALS)
    else:
        text = rng.choice(RUDE)
    return " " + text.strip()


def prompt_for(topic: tuple, rng: random.Random) -> str:
    return f"\n\nHuman: {rng.choice(topic[1])}\n\nAssistant:"


def make_split(topics: list, rng: random.Random, pairs_per_topic: int) -> dict[str, list[dict]]:
    pairwise, rated, ranked = [], [], []
    names = list(KINDS)
    for topic in topics:
        others = [t for t in TOPICS if t is not topic]
        for _ in range(pairs_per_topic):
            prompt = prompt_for(topic, rng)
            a, b = rng.sample(names, 2)
            while KINDS[a][0] == KINDS[b][0]:
                a, b = rng.sample(names, 2)
            if KINDS[a][0] < KINDS[b][0]:
                a, b = b, a
            chosen = reply(a, topic, rng.choice(others), rng)
            rejected = reply(b, topic, rng.choice(others), rng)
            if chosen == rejected:
                continue
            pairwise.append(
                {"prompt": prompt, "chosen": chosen, "rejected": rejected, "margin": float(KINDS[a][0] - KINDS[b][0])}
            )
        for _ in range(max(1, pairs_per_topic // 2)):
            prompt = prompt_for(topic, rng)
            kinds = rng.sample(names, 4)
            completions = [reply(k, topic, rng.choice(others), rng) for k in kinds]
            scores = [KINDS[k][0] for k in kinds]
            ordered = sorted(set(scores), reverse=True)
            ranks = [sum(1 for s in scores if s > score) for score in scores]  # ties share the smallest rank
            assert min(ranks) == 0 and len(ordered) >= 1
            ranked.append({"prompt": prompt, "completions": completions, "ranks": ranks})
            for kind, completion in zip(kinds, completions):
                score, helpful, relevant, polite = KINDS[kind]
                rated.append(
                    {
                        "prompt": prompt,
                        "response": completion,
                        "score": float(score),
                        "helpfulness": float(helpful),
                        "relevance": float(relevant),
                        "politeness": float(polite),
                    }
                )
    rng.shuffle(pairwise)
    rng.shuffle(rated)
    rng.shuffle(ranked)
    return {"pairwise": pairwise, "rated": rated, "ranked": ranked}


def main() -> None:
    rng = random.Random(SEED)
    topics = list(TOPICS)
    rng.shuffle(topics)
    n_test = len(topics) // 5
    splits = {"train": make_split(topics[n_test:], rng, 16), "test": make_split(topics[:n_test], rng, 16)}
    os.makedirs(OUT_DIR, exist_ok=True)
    for split, formats in splits.items():
        for name, rows in formats.items():
            path = os.path.join(OUT_DIR, f"{name}_{split}.jsonl")
            with open(path, "w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
            print(f"{path}: {len(rows)} rows")


if __name__ == "__main__":
    main()
