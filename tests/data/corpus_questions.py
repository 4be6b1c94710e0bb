"""Question datasets: yes/no, reading comprehension, science and commonsense multiple choice,
explanations, question types."""

from __future__ import annotations

import random

from tests.data.dataset import Dataset

PASSAGES = [  # title, passage, [(question, answer)]
    ("Lake Baikal", "Lake Baikal is a rift lake in Siberia, Russia. It is the deepest lake in the world, "
     "reaching 1,642 metres, and holds about a fifth of the fresh surface water on Earth. More than 300 rivers "
     "flow into the lake, but only one, the Angara, flows out of it. The lake freezes over every winter.",
     [("is lake baikal the deepest lake in the world", "True"), ("does more than one river flow out of lake "
      "baikal", "False"), ("does lake baikal freeze in winter", "True")]),
    ("Honey bees", "Honey bees live in colonies with a single queen, thousands of female workers and a few "
     "hundred male drones. Workers gather nectar and pollen, build the wax comb and defend the hive. Drones do "
     "not have stingers. A colony can survive the winter by eating the honey it stored during the summer.",
     [("do drones have a stinger", "False"), ("is there more than one queen in a honey bee colony", "False"),
      ("do honey bees eat stored honey in winter", "True")]),
    ("Chess", "Chess is a board game for two players played on a board of 64 squares. Each player starts with "
     "sixteen pieces: a king, a queen, two rooks, two bishops, two knights and eight pawns. The aim is to "
     "checkmate the opponent's king. A game can also end in a draw, for example by stalemate.",
     [("does each chess player start with sixteen pieces", "True"), ("can a game of chess end in a draw",
      "True"), ("is a chess board made of 100 squares", "False")]),
    ("The Great Wall", "The Great Wall of China is a series of walls and fortifications built over many "
     "centuries to protect Chinese states from raids. Most of the wall that survives today was built during "
     "the Ming dynasty. Contrary to a popular belief, the wall cannot be seen with the naked eye from the Moon.",
     [("can you see the great wall of china from the moon", "False"), ("was most of the surviving great wall "
      "built by the ming dynasty", "True"), ("was the great wall built in a single year", "False")]),
    ("Penguins", "Penguins are flightless seabirds that live almost entirely in the Southern Hemisphere. They "
     "use their wings as flippers to swim, and some species can dive deeper than 500 metres. The emperor "
     "penguin is the largest species; the male keeps the egg warm on his feet through the Antarctic winter.",
     [("can penguins fly", "False"), ("is the emperor penguin the largest penguin", "True"),
      ("do male emperor penguins keep the egg warm", "True")]),
    ("Tea", "Tea is made by pouring hot water over the cured leaves of the tea plant, Camellia sinensis. Green "
     "tea and black tea come from the same plant; black tea is oxidised before it is dried, green tea is not. "
     "Herbal infusions such as peppermint are often called tea but contain no tea leaves.",
     [("do green tea and black tea come from the same plant", "True"), ("does peppermint tea contain tea "
      "leaves", "False"), ("is black tea oxidised", "True")]),
    ("The Amazon", "The Amazon River in South America carries more water than any other river on Earth. It "
     "flows from the Andes mountains in Peru to the Atlantic Ocean in Brazil. There is no bridge across the "
     "main river, mostly because it flows through thinly populated rainforest.",
     [("is there a bridge across the amazon river", "False"), ("does the amazon flow into the atlantic ocean",
      "True"), ("does the amazon carry more water than any other river", "True")]),
    ("Volcanoes", "A volcano is an opening in the Earth's crust through which molten rock, ash and gases "
     "escape. Volcanoes that have erupted in recent history are called active. Many form where tectonic "
     "plates meet, such as around the Pacific Ocean in the region known as the Ring of Fire.",
     [("are all volcanoes active", "False"), ("do many volcanoes form where tectonic plates meet", "True"),
      ("is the ring of fire around the atlantic ocean", "False")]),
    ("Libraries", "A public library lends books, films and music to the people of a town for free. Most "
     "libraries also offer internet access, reading groups for children and quiet rooms for study. Members "
     "usually need a library card, which they can get by showing proof of address.",
     [("do you need a library card to borrow books", "True"), ("do public libraries charge to lend books",
      "False"), ("do libraries offer internet access", "True")]),
    ("Olympic Games", "The modern Olympic Games began in Athens in 1896. The Summer and Winter Games were held "
     "in the same year until 1992; since 1994 they have alternated every two years. Gold medals have not been "
     "made of solid gold since 1912.",
     [("are olympic gold medals made of solid gold", "False"), ("did the modern olympics begin in athens",
      "True"), ("are the summer and winter games held in the same year", "False")]),
]


def yes_no_questions(rng: random.Random) -> Dataset:
    rows = [{"question": q, "answer": a, "passage": passage}
            for _, passage, qas in PASSAGES for q, a in qas]
    return Dataset("yes_no_questions",
                   "Yes/no questions about a short encyclopedic passage that holds the answer (True or "
                   "False): reading comprehension with boolean answers. Each passage has three questions.",
                   {"default": rows})


MULTIRC = [  # paragraph, question, [(candidate answer, correct?)]
    ("Mara had saved for two years to buy a telescope. On the first clear night she carried it to the hill "
     "behind her grandmother's farm. She found Jupiter and four of its moons, then the rings of Saturn. When "
     "the clouds came in after midnight, she packed up and promised herself she would return in August to "
     "watch the meteor shower.",
     [("What did Mara see through the telescope?", [("Jupiter's moons and Saturn's rings", True),
                                                     ("A comet", False), ("Saturn's rings", True)]),
      ("Why did Mara stop observing?", [("Clouds came in", True), ("Her telescope broke", False),
                                        ("It got too cold", False)]),
      ("When will Mara return to the hill?", [("In August", True), ("The next night", False)])]),
    ("The village of Kell had one bakery, run by the Ostrow family for three generations. When the old oven "
     "failed in the winter of 1998, the villagers held a fair and raised enough money for a new one in a "
     "single weekend. The bakery reopened in March, and the family still hangs a photograph of the fair "
     "above the counter.",
     [("Who ran the bakery in Kell?", [("The Ostrow family", True), ("The villagers", False),
                                       ("A baker from the city", False)]),
      ("How did the villagers help?", [("They raised money at a fair", True), ("They built an oven", False),
                                       ("They held a fair", True)]),
      ("When did the bakery reopen?", [("In March", True), ("In the winter of 1998", False)])]),
    ("Jonas trained the town's first girls' football team in an old cow pasture. The team had no kit, so "
     "the players wore their brothers' shirts. In their third season they won the regional cup, and the "
     "council finally built them a proper pitch with floodlights, which opened the following spring.",
     [("Where did the team first train?", [("In a cow pasture", True), ("On a floodlit pitch", False),
                                           ("In a school gym", False)]),
      ("What did the team win?", [("The regional cup", True), ("A national title", False)]),
      ("What did the council build?", [("A pitch with floodlights", True), ("A new school", False),
                                       ("A proper pitch", True)])]),
]


def reading_comprehension(rng: random.Random) -> Dataset:
    rows = []
    for p, (paragraph, questions) in enumerate(MULTIRC):
        for q, (question, answers) in enumerate(questions):
            for a, (answer, correct) in enumerate(answers):
                rows.append({"paragraph": paragraph, "question": question, "answer": answer,
                             "idx.paragraph": str(p), "idx.question": str(q), "idx.answer": str(a),
                             "label": "1" if correct else "0"})
    return Dataset("reading_comprehension",
                   "Multi-sentence reading comprehension: a paragraph, a question about it and one candidate "
                   "answer, labelled 1 when the answer is correct. Several answers of a question can be "
                   "correct.", {"multirc": rows})


SCIQ = [  # question, correct, three distractors, support
    ("What is the process by which plants lose water through their leaves?", "transpiration",
     ("respiration", "condensation", "digestion"),
     "Transpiration is the loss of water vapour through small openings in leaves called stomata."),
    ("What kind of rock forms when lava cools?", "igneous rock", ("sedimentary rock", "metamorphic rock", "limestone"),
     "Igneous rocks form when magma or lava cools and hardens."),
    ("Which organ in the human body filters blood to make urine?", "the kidney",
     ("the liver", "the lung", "the stomach"), "The kidneys filter waste from the blood and make urine."),
    ("What is the unit of electrical resistance?", "the ohm", ("the volt", "the ampere", "the watt"),
     "Resistance is measured in ohms, named after Georg Ohm."),
    ("What gas do animals breathe out as a waste product?", "carbon dioxide", ("oxygen", "nitrogen", "helium"),
     "Cellular respiration releases carbon dioxide, which animals breathe out."),
    ("What part of the cell makes most of its energy?", "the mitochondrion",
     ("the nucleus", "the ribosome", "the cell wall"), "Mitochondria release energy from food in the cell."),
    ("What force pulls objects toward the centre of the Earth?", "gravity", ("magnetism", "friction", "inertia"),
     "Gravity is the force of attraction between masses."),
    ("What do we call an animal that eats both plants and meat?", "an omnivore",
     ("a herbivore", "a carnivore", "a decomposer"), "Omnivores such as bears eat both plants and animals."),
    ("What is the outermost layer of the Earth called?", "the crust", ("the mantle", "the core", "the magma"),
     "The crust is the thin, rocky outer layer of the Earth."),
    ("Which planet is known as the red planet?", "Mars", ("Venus", "Jupiter", "Mercury"),
     "Iron oxide on its surface gives Mars its red colour."),
    ("What is the change from a gas to a liquid called?", "condensation", ("evaporation", "melting", "freezing"),
     "Condensation happens when water vapour cools and becomes liquid water."),
    ("What carries messages between the brain and the body?", "the nerves", ("the veins", "the bones", "the muscles"),
     "Nerves carry electrical signals between the brain and the rest of the body."),
    ("What is the centre of an atom called?", "the nucleus", ("the electron", "the shell", "the orbit"),
     "The nucleus holds an atom's protons and neutrons."),
    ("What type of energy is stored in food?", "chemical energy", ("nuclear energy", "sound energy", "light energy"),
     "Food stores chemical energy in the bonds of its molecules."),
    ("How many chromosomes do most human body cells have?", "46", ("23", "48", "92"),
     "Human body cells have 23 pairs of chromosomes, 46 in all."),
]


def science_questions(rng: random.Random) -> Dataset:
    rows = []
    for question, correct, distractors, support in SCIQ * 2:
        d = list(distractors)
        rng.shuffle(d)
        rows.append({"question": question, "distractor3": d[2], "distractor1": d[0], "distractor2": d[1],
                     "correct_answer": correct, "support": support if len(rows) < len(SCIQ) else ""})
    return Dataset("science_questions",
                   "Crowd-sourced school science exam questions with four answer options and, for most, a "
                   "supporting paragraph that contains the answer.", {"default": rows})


CSQA = [  # question, concept, five choices, answer index, explanation
    ("Where would you keep milk so that it stays cold?", "milk",
     ("refrigerator", "cupboard", "oven", "garden", "bookshelf"), 0, "A refrigerator keeps food cold."),
    ("What do people usually do when they are tired?", "tired",
     ("sleep", "run", "shout", "cook", "paint"), 0, "Sleep is how people rest when tired."),
    ("Where can you borrow a book for free?", "book",
     ("shop", "library", "airport", "factory", "bank"), 1, "Libraries lend books for free."),
    ("What might you use to cut paper?", "cut",
     ("spoon", "pillow", "scissors", "bucket", "sock"), 2, "Scissors are made for cutting paper."),
    ("Where would you find a lot of sand and waves?", "sand",
     ("forest", "office", "beach", "cellar", "attic"), 2, "Beaches have sand and waves."),
    ("What do you need to see in a dark room?", "dark",
     ("light", "music", "water", "salt", "paint"), 0, "Light lets you see in the dark."),
    ("If you are hungry, what should you do?", "hungry",
     ("sleep", "eat", "swim", "sing", "read"), 1, "Eating ends hunger."),
    ("Where do planes take off and land?", "plane",
     ("harbour", "airport", "stadium", "garage", "school"), 1, "Planes use airports to take off and land."),
    ("What do you wear on your feet to go hiking?", "hiking",
     ("gloves", "hat", "boots", "scarf", "belt"), 2, "Boots protect your feet on a hike."),
    ("Where would a doctor work?", "doctor",
     ("hospital", "farm", "theatre", "mine", "library"), 0, "Doctors work in hospitals."),
    ("What does a plant need to grow?", "plant",
     ("darkness", "plastic", "sunlight", "noise", "sugar"), 2, "Plants need sunlight to make food."),
    ("What do you call a place where animals are kept for people to see?", "animals",
     ("zoo", "market", "church", "bank", "office"), 0, "A zoo keeps animals for visitors."),
    ("Where would you put dirty clothes?", "clothes",
     ("fridge", "laundry basket", "oven", "mailbox", "bookshelf"), 1, "Dirty clothes go in a laundry basket."),
    ("What would you use to call a friend far away?", "friend",
     ("telephone", "hammer", "kettle", "ladder", "broom"), 0, "A telephone lets you talk to someone far away."),
    ("What happens to ice when it gets warm?", "ice",
     ("it melts", "it grows", "it sings", "it burns", "it hardens"), 0, "Warm ice melts into water."),
]
LETTERS = "ABCDE"


def multiple_choice_qa(rng: random.Random) -> Dataset:
    rows = []
    for i, (question, concept, choices, answer, _) in enumerate(CSQA * 2):
        if i >= len(CSQA):
            question = "Think about it: " + question[0].lower() + question[1:]
        rows.append({"id": f"mc{i:03d}", "question": question, "question_concept": concept,
                     "choices.label": str(list(LETTERS)), "choices.text": str(list(choices)),
                     "answerKey": LETTERS[answer]})
    return Dataset("multiple_choice_qa",
                   "Commonsense multiple-choice questions with five answer options (A to E) and the key of "
                   "the correct one.", {"default": rows})


def commonsense_explanations(rng: random.Random) -> Dataset:
    rows = []
    for i, (question, _, choices, answer, why) in enumerate(CSQA * 2):
        picked = list(choices[:3]) if answer < 3 else [choices[answer], *choices[:2]]
        rng.shuffle(picked)
        explanation = why if i < len(CSQA) else f"The answer is {choices[answer]}, because {why[0].lower()}{why[1:]}"
        rows.append({"id": f"ce{i:03d}", "question": question, "choices": str(picked), "answer": choices[answer],
                     "abstractive_explanation": explanation})
    return Dataset("commonsense_explanations",
                   "Commonsense questions with three answer choices, the answer, and a free-text explanation "
                   "written by a person of why that answer is right.", {"v1.0": rows})


QUESTION_TYPES = [  # coarse label, fine label, questions
    ("0", "25", ["What does the abbreviation NASA stand for?", "What is the full form of UNESCO?"]),
    ("1", "7", ["What is the best way to remove a red wine stain?", "How do you make bread rise?",
                "Why is the sky blue?", "What causes a rainbow to appear?"]),
    ("2", "5", ["What is the name of the largest desert in Africa?", "Which animal is the fastest on land?",
                "What instrument did Louis Armstrong play?", "What sport is played at Wimbledon?"]),
    ("3", "29", ["Who wrote the novel Pride and Prejudice?", "Who painted the Mona Lisa?",
                 "Who was the first person to walk on the Moon?", "Who invented the telephone?"]),
    ("4", "32", ["Where is the tallest building in the world?", "Which country has the most islands?",
                 "What city hosted the 2012 Summer Olympics?", "Where does the river Danube begin?"]),
    ("5", "38", ["How many bones are in the human hand?", "When did the Berlin Wall fall?",
                 "How far is the Moon from the Earth?", "What year did the Titanic sink?"]),
]


def question_types(rng: random.Random) -> Dataset:
    rows = []
    for coarse, fine, questions in QUESTION_TYPES:
        for q in questions:
            rows.append({"text": q, "coarse_label": coarse, "fine_label": fine})
            rows.append({"text": q.replace("?", " ?"), "coarse_label": coarse, "fine_label": fine})
    rng.shuffle(rows)
    return Dataset("question_types",
                   "Open-domain questions classified by the type of answer they expect: abbreviation, "
                   "description, entity, human, location or number (question classification).",
                   {"default": rows})
