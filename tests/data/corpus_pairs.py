"""Sentence-pair datasets: NLI, science entailment, paraphrases, medical question pairs."""

from __future__ import annotations

import random

from tests.data.dataset import Dataset

# -- NLI ---------------------------------------------------------------------------------------------
SCENES = [  # premise, entailed, neutral, contradicted
    ("A woman in a red coat is walking a dog along the beach.", "A person is outside with an animal.",
     "The woman is walking to her sister's house.", "The woman is asleep in her bed."),
    ("Two boys are kicking a football in a muddy field.", "Children are playing a game.",
     "The boys are on the same school team.", "The field is dry and empty."),
    ("An old man is reading a newspaper on a park bench.", "A man is sitting down.",
     "The man reads the sports pages first.", "The man is running a marathon."),
    ("A chef is chopping onions in a busy kitchen.", "Someone is preparing food.",
     "The chef is making soup for a wedding.", "The kitchen is closed for the night."),
    ("A girl in a yellow helmet rides a bicycle down a hill.", "A child is on a bike.",
     "The girl is racing her brother.", "The girl is swimming in a lake."),
    ("Three musicians play violins on a street corner.", "People are making music outdoors.",
     "The musicians are collecting money for charity.", "The street corner is silent."),
    ("A man in a suit waits for a train on a crowded platform.", "A man is at a station.",
     "The man is late for a job interview.", "The platform is completely empty."),
    ("A group of tourists takes photos in front of a cathedral.", "People are near a building.",
     "The tourists arrived by coach this morning.", "The tourists are sleeping in a hotel."),
    ("A baby is laughing while her father blows bubbles.", "A child is happy.",
     "The father is on holiday this week.", "The baby is crying loudly."),
    ("A farmer drives a tractor across a wheat field at sunset.", "A vehicle is being driven.",
     "The farmer is harvesting his last field of the year.", "The farmer is asleep in the barn."),
    ("Two women are laughing over coffee in a small cafe.", "People are drinking something.",
     "The women have been friends since school.", "The cafe has no customers."),
    ("A dog leaps to catch a frisbee in a sunny park.", "An animal is jumping.",
     "The dog belongs to the man who threw the frisbee.", "The dog is lying asleep indoors."),
    ("A teenager is painting a mural on a brick wall.", "A young person is making art.",
     "The mural was commissioned by the city.", "The wall is being knocked down."),
    ("A nurse checks the blood pressure of an elderly patient.", "A patient is being examined.",
     "The patient came in for a yearly check-up.", "The nurse is away on holiday."),
    ("A crowd cheers as a runner crosses the finish line.", "A race has ended for someone.",
     "The runner set a new personal record.", "Nobody is watching the race."),
    ("A boy feeds ducks by the edge of a frozen pond.", "A child is near some birds.",
     "The boy brought bread from home.", "The boy is inside a classroom."),
]


LABELLED = ("entailment", "neutral", "contradiction")  # the order of a scene's hypotheses


def nli_pairs(rng: random.Random) -> Dataset:
    rows = []
    for turn in range(3):  # one hypothesis of every scene per turn: neighbouring rows have other premises
        for i, scene in enumerate(SCENES):
            label, hypothesis = LABELLED[(i + turn) % 3], scene[1 + (i + turn) % 3]
            rows.append({"idx": f"scene{i:02d}#{label[0]}", "premise": scene[0], "hypothesis": hypothesis,
                         "label": label, "type": rng.choice(["original", "cf"])})
    return Dataset("corpus__nli-pairs",
                   "Premise and hypothesis sentence pairs about everyday scenes, labelled entailment, neutral or "
                   "contradiction (natural language inference). Every premise comes with one hypothesis of "
                   "each label.", {"plain_text": rows})


SCIENCE_FACTS = [  # fact, a hypothesis it supports, one it says nothing about
    ("Plants make their own food by photosynthesis, using light energy from the Sun.",
     "Plants use sunlight to make food.", "Plants grow faster in the spring."),
    ("Water boils at 100 degrees Celsius at sea level.", "Water boils at 100 degrees Celsius at sea level.",
     "Salt water freezes more slowly than fresh water."),
    ("The heart pumps blood through arteries to every part of the body.", "Arteries carry blood from the heart.",
     "The human heart weighs about 300 grams."),
    ("Earthquakes happen when rocks along a fault suddenly slip.", "A slip along a fault can cause an earthquake.",
     "Most earthquakes happen at night."),
    ("Mammals are warm-blooded animals that feed their young with milk.", "Mammals feed their young with milk.",
     "Mammals live longer than reptiles."),
    ("The Moon reflects light from the Sun; it makes no light of its own.", "Moonlight is reflected sunlight.",
     "The Moon is slowly moving away from Earth."),
    ("Copper is a good conductor of electricity, so it is used in wires.", "Copper conducts electricity well.",
     "Copper was the first metal used by people."),
    ("Sound travels faster through water than through air.", "Sound moves faster in water than in air.",
     "Whales use sound to find food."),
    ("Evaporation turns liquid water into water vapour.", "Liquid water can become vapour by evaporation.",
     "Evaporation is faster on windy days."),
    ("Insects have six legs and a body in three parts.", "An insect has six legs.",
     "Ants are the most common insects."),
    ("Magnets attract iron and steel but not aluminium.", "A magnet will pull on an iron nail.",
     "Magnets lose strength when they are heated."),
    ("The Earth turns once on its axis every 24 hours, giving day and night.",
     "Earth's rotation causes day and night.", "Days are longer in the summer."),
    ("Vaccines train the immune system to recognise a germ.", "A vaccine helps the body recognise germs.",
     "Most vaccines are given in childhood."),
    ("Glaciers carve valleys as they slowly move downhill.", "Moving glaciers shape valleys.",
     "Glaciers cover a tenth of the land on Earth."),
    ("Fossils are the preserved remains or traces of ancient living things.",
     "Fossils preserve traces of past life.", "Fossils are found mostly in deserts."),
]


def science_entailment(rng: random.Random) -> Dataset:
    rows = []
    for fact, supported, unrelated in SCIENCE_FACTS:
        rows.append({"sentence1": fact, "sentence2": supported, "gold_label": "entailment"})
        rows.append({"sentence1": fact, "sentence2": unrelated, "gold_label": "neutral"})
    return Dataset("science_entailment",
                   "Science facts paired with a hypothesis that the fact supports (entailment) or does not "
                   "settle (neutral): textual entailment for science questions.", {"snli_format": rows})


# -- paraphrase and medical question pairs -------------------------------------------------------------
ROUTES = [("Lima", "Quito"), ("Oslo", "Bergen"), ("Porto", "Lisbon"), ("Kyoto", "Osaka"), ("Accra", "Kumasi")]
PAIR_VERBS = [("The first train from {a} to {b} leaves at six in the morning.",
               "At six in the morning the first train leaves {a} for {b}.",
               "The first train from {b} to {a} leaves at six in the morning."),
              ("Flights from {a} to {b} are cheaper on Tuesdays.",
               "On Tuesdays it costs less to fly from {a} to {b}.",
               "Flights from {b} to {a} are cheaper on Tuesdays."),
              ("The road from {a} to {b} was closed after the storm.",
               "After the storm, the road between {a} and {b} was shut.",
               "The storm closed the road from {b} to {a} before it reached {a}.")]


def paraphrase_pairs(rng: random.Random) -> Dataset:
    rows = []
    for a, b in ROUTES:
        for s, same, swapped in PAIR_VERBS:
            rows.append({"id": str(len(rows)), "sentence1": s.format(a=a, b=b), "sentence2": same.format(a=a, b=b),
                         "label": "1"})
            rows.append({"id": str(len(rows)), "sentence1": s.format(a=a, b=b),
                         "sentence2": swapped.format(a=a, b=b), "label": "0"})
    return Dataset("corpus__paraphrase-pairs",
                   "Sentence pairs with high word overlap, labelled 1 when they are paraphrases and 0 when "
                   "swapping words changed the meaning (paraphrase adversaries from word scrambling).",
                   {"labeled_swap": rows})


MEDICAL = [  # question, a similar one, a related but different one
    ("Can I take ibuprofen with a cold?", "Is it safe to use ibuprofen when I have a cold?",
     "How much ibuprofen can a child take?"),
    ("Why do my knees hurt after running?", "What causes knee pain after a run?",
     "Is running bad for people with asthma?"),
    ("How long does a sprained ankle take to heal?", "What is the recovery time for an ankle sprain?",
     "Should I put heat or ice on a sprained ankle?"),
    ("Is it normal to feel dizzy after donating blood?", "Why might I feel light-headed after giving blood?",
     "How often can I donate blood?"),
    ("What are the early signs of diabetes?", "Which symptoms suggest that someone may have diabetes?",
     "What should a person with diabetes eat for breakfast?"),
    ("Can stress cause headaches?", "Is it possible for stress to give me headaches?",
     "What painkillers work best for a migraine?"),
    ("How much water should an adult drink each day?", "What is the recommended daily water intake for adults?",
     "Is sparkling water bad for my teeth?"),
    ("Why does my child have a fever at night?", "What causes a child's temperature to rise in the evening?",
     "When should I take my child to hospital for a cough?"),
    ("Is it safe to exercise during pregnancy?", "Can pregnant women work out safely?",
     "What vitamins should I take while pregnant?"),
    ("What helps with a sore throat?", "How can I soothe a sore throat at home?",
     "Is a sore throat a sign of a heart problem?"),
    ("Can allergies cause a cough?", "Is coughing a symptom of an allergy?",
     "How do I test for a peanut allergy?"),
    ("How can I sleep better with back pain?", "What sleeping position helps lower back pain?",
     "Which exercises strengthen the lower back?"),
    ("Do antibiotics work against the flu?", "Can the flu be treated with antibiotics?",
     "When is the best time to get a flu vaccine?"),
    ("Why are my hands always cold?", "What makes someone's hands feel cold all the time?",
     "Can cold weather cause arthritis?"),
    ("Is coffee bad for high blood pressure?", "Does drinking coffee raise blood pressure?",
     "How can I lower my cholesterol?"),
]


def medical_question_pairs(rng: random.Random) -> Dataset:
    rows = []
    for i, (question, similar, different) in enumerate(MEDICAL):
        rows.append({"dr_id": str(1 + i % 4), "question_1": question, "question_2": similar, "label": "1"})
        rows.append({"dr_id": str(1 + i % 4), "question_1": question, "question_2": different, "label": "0"})
    return Dataset("corpus__medical-question-pairs",
                   "Pairs of patient questions written by doctors: label 1 when the second question asks the "
                   "same thing in other words, 0 when it is related but asks something else.",
                   {"default": rows})
