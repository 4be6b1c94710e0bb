"""Writes the demo corpus (``datasets/``) and its two tasks (``tasks/``) next to this file.

The corpus is ours: eight small datasets (about 300 rows) in five file formats — Parquet with Hugging Face
ClassLabel metadata, JSONL with nested fields, JSON with a ``{"data": [...]}`` wrapper, CSV and TSV —
each with a README.md card. Deterministic: running it again writes identical text files (Parquet files
are rewritten with the same content). Run ``python engine/demo_data/build_corpus.py`` after editing.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "datasets"
TASKS = HERE / "tasks"


def card(pretty: str, text: str, extra: str = "") -> str:
    return f"---\npretty_name: {pretty}\nlicense: cc0-1.0\n{extra}---\n\n# {pretty}\n\n## Dataset Description\n\n{text}\n"


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def write_csv(path: Path, rows: list[dict], delimiter: str = ",") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=delimiter, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def write_parquet(path: Path, columns: dict[str, list], labels: dict[str, list[str]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    features = {}
    for name in columns:
        if name in labels:
            features[name] = {"names": labels[name], "_type": "ClassLabel"}
        else:
            features[name] = {"dtype": "string", "_type": "Value"}
    table = pa.table(columns).replace_schema_metadata(
        {b"huggingface": json.dumps({"info": {"features": features}}).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


# -- 1. product reviews (Parquet, ClassLabel) ---------------------------------------------------
PRODUCTS = ["kettle", "desk lamp", "backpack", "bluetooth speaker", "running shoes", "coffee grinder",
            "phone case", "office chair", "water bottle", "keyboard", "rain jacket", "blender", "headphones",
            "yoga mat", "toaster", "umbrella", "monitor stand", "electric toothbrush", "frying pan", "tent"]
GOOD = ["works exactly as described and feels solid", "arrived early and was easy to set up",
        "is worth every penny", "exceeded my expectations after a month of daily use",
        "is quiet, well made and looks great on my desk", "has held up perfectly on two long trips",
        "is the best purchase I made this year", "does the job without any fuss"]
BAD = ["stopped working after two weeks", "arrived scratched and the seller ignored my emails",
       "feels cheap and the buttons stick", "is much smaller than the photos suggest",
       "smells of plastic even after washing", "broke the first time I used it",
       "drains the battery in an hour", "is loud and wobbles on a flat table"]
OPENERS = ["Honestly, this", "The", "My new", "This", "Overall the", "After a week, the"]
CLOSERS = {"positive": ["Highly recommended.", "Would buy again.", "Five stars.", "Great value.", ""],
           "negative": ["Returning it.", "Avoid.", "One star.", "Not worth the money.", ""]}


def product_reviews(rng: random.Random) -> None:
    texts, labels, products = [], [], []
    for i in range(50):
        label = i % 2
        product = PRODUCTS[i % len(PRODUCTS)]
        body = rng.choice(GOOD if label else BAD)
        name = "positive" if label else "negative"
        texts.append(f"{rng.choice(OPENERS)} {product} {body}. {rng.choice(CLOSERS[name])}".strip())
        labels.append(label)
        products.append(product)
    d = OUT / "demo__product-reviews"
    write_parquet(d / "data" / "train-00000-of-00001.parquet",
                  {"review": texts, "product": products, "label": labels}, {"label": ["negative", "positive"]})
    (d / "README.md").write_text(card(
        "demo/product-reviews",
        "Short customer reviews of household products, each labelled positive or negative. Written for the "
        "rebase-tui demo: a sentiment-classification source that a review-sentiment task should retrieve "
        "first.",
        "task_categories:\n- text-classification\n"), encoding="utf-8")


# -- 2. movie snippets (JSONL, nested) -----------------------------------------------------------
FILMS = ["The Long Harbour", "Paper Moons", "Night Shift at Kestrel Street", "A Quiet Orbit", "The Glass Orchard",
         "Dust and Daylight", "Marigold Express", "The Last Ferry", "Northern Static", "Small Hours"]
PRAISE = ["a warm, funny script and a lead performance that carries every scene",
          "gorgeous photography and a score that lingers for days",
          "tight pacing; not a minute is wasted", "the most moving ending I have seen in years"]
PANS = ["a plot full of holes and dialogue that sounds like a manual",
        "two hours that feel like four", "flat acting and a twist you can see from the poster",
        "noisy action scenes that never make you care about anyone"]


def movie_snippets(rng: random.Random) -> None:
    rows = []
    for i in range(40):
        good = i % 3 != 0
        stars = rng.choice([4, 5]) if good else rng.choice([1, 2])
        text = rng.choice(PRAISE if good else PANS)
        rows.append({"id": f"m{i:03d}", "film": {"title": FILMS[i % len(FILMS)], "year": 1990 + (i * 7) % 34},
                     "snippet": f"{FILMS[i % len(FILMS)]}: {text}.", "stars": stars,
                     "tags": sorted(rng.sample(["drama", "comedy", "thriller", "family", "romance", "sci-fi"], 2))})
    d = OUT / "demo__movie-snippets"
    write_jsonl(d / "train.jsonl", rows)
    write_jsonl(d / "test.jsonl", [{"id": "t000", "film": {"title": "Held Out", "year": 2001},
                                    "snippet": "A test-split row that a train ingest skips.", "stars": 3,
                                    "tags": []}])
    (d / "README.md").write_text(card(
        "demo/movie-snippets",
        "One-sentence movie review snippets with a star rating from 1 to 5 and genre tags. Nested fields "
        "(`film.title`, `film.year`) are flattened by the ingest to `film_title` and `film_year`."), encoding="utf-8")


# -- 3. word problems (CSV, chain of thought) ----------------------------------------------------
NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Farah", "Gus", "Hana", "Ivo", "Jun", "Kemi", "Luis"]
ITEMS = [("apples", "bought"), ("stickers", "collected"), ("marbles", "won"), ("books", "borrowed"),
         ("cookies", "baked"), ("stamps", "traded for")]


def word_problems(rng: random.Random) -> None:
    rows = []
    for i in range(40):
        name = NAMES[i % len(NAMES)]
        item, verb = ITEMS[i % len(ITEMS)]
        a, b = rng.randint(3, 40), rng.randint(2, 25)
        kind = i % 4
        if kind == 0:
            q = f"{name} has {a} {item} and {verb} {b} more. How many {item} does {name} have now?"
            r, ans = f"{name} starts with {a} and gets {b} more, so {a} + {b} = {a + b}.", a + b
        elif kind == 1:
            a = a + b
            q = f"{name} had {a} {item} and gave {b} to a friend. How many {item} are left?"
            r, ans = f"{name} gives away {b} of {a}, so {a} - {b} = {a - b}.", a - b
        elif kind == 2:
            a, b = rng.randint(2, 9), rng.randint(2, 12)
            q = f"{name} fills {a} boxes with {b} {item} each. How many {item} is that in total?"
            r, ans = f"{a} boxes of {b} is {a} * {b} = {a * b}.", a * b
        else:
            b = rng.randint(2, 6)
            a = b * rng.randint(2, 9)
            q = f"{name} shares {a} {item} equally among {b} friends. How many does each friend get?"
            r, ans = f"{a} split {b} ways is {a} / {b} = {a // b}.", a // b
        rows.append({"question": q, "reasoning": r, "answer": str(ans)})
    d = OUT / "demo__word-problems"
    write_csv(d / "train.csv", rows)
    (d / "README.md").write_text(card(
        "demo/word-problems",
        "Grade-school arithmetic word problems (addition, subtraction, multiplication, sharing) with a "
        "one-line reasoning and the final number."), encoding="utf-8")


# -- 4. science facts (JSON with a data wrapper) -------------------------------------------------
SCIENCE = [
    ("What gas do plants take in from the air to make food?", "carbon dioxide",
     "Plants use carbon dioxide, water and sunlight in photosynthesis."),
    ("What is the boiling point of water at sea level in Celsius?", "100 degrees",
     "At standard pressure water boils at 100 degrees Celsius."),
    ("Which planet is closest to the Sun?", "Mercury", "Mercury orbits the Sun at about 58 million km."),
    ("What force keeps the planets in orbit around the Sun?", "gravity",
     "The Sun's gravity bends the planets' paths into orbits."),
    ("What part of the cell contains the genetic material?", "the nucleus",
     "In eukaryotic cells DNA is stored in the nucleus."),
    ("How many bones are in the adult human body?", "206", "Adults have 206 bones; babies have more."),
    ("What is the chemical symbol for gold?", "Au", "Gold's symbol Au comes from the Latin aurum."),
    ("What kind of energy does a moving car have?", "kinetic energy", "Energy of motion is kinetic energy."),
    ("Which organ pumps blood through the body?", "the heart", "The heart pumps blood through arteries and veins."),
    ("What is the largest planet in the solar system?", "Jupiter", "Jupiter is more than 300 times Earth's mass."),
    ("What do bees collect from flowers to make honey?", "nectar", "Bees turn nectar into honey in the hive."),
    ("What is frozen water called?", "ice", "Water freezes into ice at 0 degrees Celsius."),
    ("Which gas do humans need to breathe to live?", "oxygen", "Cells use oxygen to release energy from food."),
    ("What is the center of an atom called?", "the nucleus", "An atom's nucleus holds its protons and neutrons."),
    ("What simple machine is a ramp?", "an inclined plane", "A ramp is an inclined plane that trades distance for force."),
    ("How long does Earth take to orbit the Sun?", "about 365 days", "One orbit of the Sun takes about 365.25 days."),
    ("What layer of gas surrounds Earth?", "the atmosphere", "The atmosphere is mostly nitrogen and oxygen."),
    ("What do we call animals that eat only plants?", "herbivores", "Herbivores such as cows eat only plants."),
    ("What is the hardest natural substance?", "diamond", "Diamond is carbon in a very rigid crystal lattice."),
    ("What causes the seasons on Earth?", "the tilt of Earth's axis",
     "Earth's 23.4 degree tilt changes how directly sunlight strikes each hemisphere."),
]


def science_facts(rng: random.Random) -> None:
    rows = []
    for i, (q, a, s) in enumerate(SCIENCE * 2):
        if i >= len(SCIENCE):
            q = "Quiz: " + q[0].lower() + q[1:]
        rows.append({"question": q, "answer": a, "support": s, "grade": 3 + i % 4})
    d = OUT / "demo__science-facts"
    d.mkdir(parents=True, exist_ok=True)
    (d / "train.json").write_text(json.dumps({"version": "1.0", "data": rows}, ensure_ascii=False, indent=1),
                                  encoding="utf-8")
    (d / "README.md").write_text(card(
        "demo/science-facts",
        "Elementary science quiz questions with a short answer and one supporting sentence, for grades "
        "3 to 6. Each question appears twice, once prefixed with 'Quiz:', so many answers repeat: the "
        "datastore stores and embeds every distinct text once."), encoding="utf-8")


# -- 5. capitals (TSV) ---------------------------------------------------------------------------
CAPITALS = [("France", "Paris", "Europe"), ("Japan", "Tokyo", "Asia"), ("Kenya", "Nairobi", "Africa"),
            ("Brazil", "Brasília", "South America"), ("Canada", "Ottawa", "North America"),
            ("Australia", "Canberra", "Oceania"), ("Egypt", "Cairo", "Africa"), ("India", "New Delhi", "Asia"),
            ("Norway", "Oslo", "Europe"), ("Peru", "Lima", "South America"), ("Mexico", "Mexico City", "North America"),
            ("Vietnam", "Hanoi", "Asia"), ("Ghana", "Accra", "Africa"), ("Portugal", "Lisbon", "Europe"),
            ("Chile", "Santiago", "South America"), ("New Zealand", "Wellington", "Oceania"),
            ("Turkey", "Ankara", "Asia"), ("Morocco", "Rabat", "Africa"), ("Poland", "Warsaw", "Europe"),
            ("Argentina", "Buenos Aires", "South America"), ("Thailand", "Bangkok", "Asia"),
            ("Ireland", "Dublin", "Europe"), ("Senegal", "Dakar", "Africa"), ("Cuba", "Havana", "North America"),
            ("Fiji", "Suva", "Oceania"), ("Greece", "Athens", "Europe"), ("Nepal", "Kathmandu", "Asia"),
            ("Colombia", "Bogotá", "South America"), ("Ethiopia", "Addis Ababa", "Africa"),
            ("Sweden", "Stockholm", "Europe")]


def capitals(rng: random.Random) -> None:
    rows = [{"country": c, "capital": k, "continent": cont,
             "question": f"What is the capital of {c}?"} for c, k, cont in CAPITALS]
    d = OUT / "demo__world-capitals"
    write_csv(d / "train.tsv", rows, delimiter="\t")
    (d / "README.md").write_text(card(
        "demo/world-capitals",
        "Thirty countries with their capital city and continent, plus the question 'What is the capital "
        "of X?'. A tab-separated file."), encoding="utf-8")


# -- 6. recipes (JSONL, lists and nested dicts) --------------------------------------------------
DISHES = [("Tomato soup", ["tomatoes", "onion", "garlic", "stock"], "Italian", 30),
          ("Pancakes", ["flour", "milk", "eggs", "butter"], "American", 20),
          ("Dal", ["red lentils", "turmeric", "cumin", "ginger"], "Indian", 35),
          ("Guacamole", ["avocado", "lime", "onion", "coriander"], "Mexican", 10),
          ("Miso soup", ["miso paste", "tofu", "seaweed", "spring onion"], "Japanese", 15),
          ("Shakshuka", ["eggs", "tomatoes", "peppers", "paprika"], "Middle Eastern", 25),
          ("Greek salad", ["cucumber", "tomatoes", "feta", "olives"], "Greek", 10),
          ("Fried rice", ["rice", "eggs", "peas", "soy sauce"], "Chinese", 20),
          ("Ratatouille", ["aubergine", "courgette", "peppers", "tomatoes"], "French", 60),
          ("Banana bread", ["bananas", "flour", "sugar", "eggs"], "American", 70)]


def recipes(rng: random.Random) -> None:
    rows = []
    for i in range(30):
        title, ingredients, cuisine, minutes = DISHES[i % len(DISHES)]
        variant = ["", " (vegan)", " for two"][i // len(DISHES)]
        rows.append({"title": title + variant, "ingredients": ingredients,
                     "meta": {"cuisine": cuisine, "minutes": minutes + 5 * (i // len(DISHES))},
                     "steps": f"Prepare the {ingredients[0]}, add the {ingredients[1]} and cook for "
                              f"{minutes} minutes."})
    d = OUT / "demo__recipes"
    write_jsonl(d / "data" / "train.jsonl", rows)
    (d / "README.md").write_text(card(
        "demo/recipes",
        "Thirty simple recipes: a title, an ingredient list, the cuisine and cooking time, and one line of "
        "steps. Lists are stored as JSON text; nested fields are flattened (`meta_cuisine`)."), encoding="utf-8")


# -- 7. support tickets (Parquet, two configs) ----------------------------------------------------
TICKETS = {
    "billing": ["I was charged twice for my subscription this month", "My invoice shows the wrong company name",
                "How do I get a refund for an annual plan?", "The payment page rejects my card"],
    "bug": ["The app crashes when I open the settings page", "Export to PDF produces an empty file",
            "Search returns no results for words with accents", "The dark theme makes buttons invisible"],
    "account": ["I cannot reset my password, the email never arrives", "Please delete my account and data",
                "How do I add a second user to our team?", "I want to change the email on my account"],
}


def support_tickets(rng: random.Random) -> None:
    cats = list(TICKETS)
    d = OUT / "demo__support-tickets"
    for config, n, greeting in (("english", 28, "Hello, "), ("short", 12, "")):
        subjects, bodies, labels = [], [], []
        for i in range(n):
            cat = i % 3
            line = TICKETS[cats[cat]][(i // 3) % 4]
            subjects.append(line.split(",")[0][:40].rstrip())
            bodies.append(f"{greeting}{line}. Ticket {config[0].upper()}{i:03d}.")
            labels.append(cat)
        write_parquet(d / config / "train.parquet", {"subject": subjects, "body": bodies, "category": labels},
                      {"category": cats})
    (d / "README.md").write_text(card(
        "demo/support-tickets",
        "Customer-support tickets labelled billing, bug or account, in two configs: `english` (full "
        "messages) and `short`."), encoding="utf-8")


# -- 8. entailment pairs (CSV) ---------------------------------------------------------------------
PAIRS = [("A man is playing a guitar on stage.", "A man is performing music.", "entailment"),
         ("A man is playing a guitar on stage.", "The stage is empty.", "contradiction"),
         ("A man is playing a guitar on stage.", "The man is a famous singer.", "neutral"),
         ("Two children are building a sandcastle.", "Kids are at the beach.", "neutral"),
         ("Two children are building a sandcastle.", "Children are playing with sand.", "entailment"),
         ("Two children are building a sandcastle.", "The children are asleep.", "contradiction"),
         ("A woman is reading a book on a train.", "A woman is travelling.", "entailment"),
         ("A woman is reading a book on a train.", "The woman is driving a car.", "contradiction"),
         ("A woman is reading a book on a train.", "The book is a novel.", "neutral"),
         ("The dog is running through the snow.", "An animal is outside.", "entailment"),
         ("The dog is running through the snow.", "The dog is sleeping indoors.", "contradiction"),
         ("The dog is running through the snow.", "The dog is chasing a ball.", "neutral"),
         ("A chef is slicing vegetables.", "Someone is preparing food.", "entailment"),
         ("A chef is slicing vegetables.", "The kitchen is closed.", "contradiction"),
         ("A chef is slicing vegetables.", "The chef is making soup.", "neutral")]


def entailment_pairs(rng: random.Random) -> None:
    rows = [{"premise": p, "hypothesis": h, "label": lab} for p, h, lab in PAIRS]
    rows += [{"premise": p.replace("A ", "One ", 1), "hypothesis": h, "label": lab} for p, h, lab in PAIRS]
    d = OUT / "demo__entailment-pairs"
    write_csv(d / "train.csv", rows)
    (d / "README.md").write_text(card(
        "demo/entailment-pairs",
        "Premise and hypothesis sentence pairs labelled entailment, contradiction or neutral (natural "
        "language inference)."), encoding="utf-8")


def tasks() -> None:
    TASKS.mkdir(parents=True, exist_ok=True)
    sentiment = {
        "name": "demo-review-sentiment",
        "instruction": "Decide whether the customer review is positive or negative. Answer with one word: "
                       "positive or negative.",
        "examples": [
            {"input": "The blender is powerful and easy to clean. Love it.", "output": "positive"},
            {"input": "The zipper on this bag broke on the first day.", "output": "negative"},
            {"input": "Comfortable, light and the battery lasts all week.", "output": "positive"},
        ],
        "source_datasets_to_exclude": [],
    }
    arithmetic = {
        "name": "demo-word-problems",
        "instruction": "Solve the arithmetic word problem. Explain the calculation in one sentence, then end "
                       "with 'The answer is N.'",
        "examples": [
            {"input": "Maya has 12 pencils and buys 7 more. How many pencils does she have?",
             "output": "She starts with 12 and adds 7, so 12 + 7 = 19. The answer is 19."},
            {"input": "A baker puts 6 rolls in each of 4 bags. How many rolls are there?",
             "output": "4 bags of 6 rolls is 4 * 6 = 24. The answer is 24."},
        ],
        "source_datasets_to_exclude": ["demo/word-problems"],
    }
    for spec in (sentiment, arithmetic):
        (TASKS / f"{spec['name']}.json").write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n",
                                                    encoding="utf-8")


def main() -> None:
    rng = random.Random(20240705)
    for build in (product_reviews, movie_snippets, word_problems, science_facts, capitals, recipes,
                  support_tickets, entailment_pairs):
        build(rng)
    tasks()


if __name__ == "__main__":
    main()
