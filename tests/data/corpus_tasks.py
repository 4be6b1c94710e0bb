"""Task files and teacher-style examples written for the tests.

Tasks follow the ReBase format (``name``, ``instruction``, ``examples``, ``source_datasets_to_exclude``)
and cover what the engine treats differently: a label-set task (``mnli``), span and code answers
(``squad``, ``mconala``) and chain-of-thought tasks in the style of BIG-Bench-Hard whose outputs end
"... So the answer is X." with Yes/No, True/False, (A)-(D), numbers and word lists as X. The examples are
our own; so are the teacher outputs (``{"input", "output"}`` lines as a teacher model would write them),
generated here so that every answer is right by construction.
"""

from __future__ import annotations

import random

from tests.data.corpus_pairs import SCENES, SCIENCE_FACTS

# -- boolean expressions: generated, evaluated step by step ----------------------------------------------
PRECEDENCE = "Brackets first, then not, then and, then or."


def _reduce(tokens: list[str], steps: list[str]) -> str:
    """Evaluate a bracket-free token list (True/False/not/and/or), recording each step."""
    tokens = list(tokens)
    while "not" in tokens:
        j = len(tokens) - 1 - tokens[::-1].index("not")
        value = "False" if tokens[j + 1] == "True" else "True"
        steps.append(f"not {tokens[j + 1]} = {value}.")
        tokens[j:j + 2] = [value]
    for op in ("and", "or"):
        while op in tokens:
            j = tokens.index(op)
            a, b = tokens[j - 1], tokens[j + 1]
            value = str(a == "True" and b == "True") if op == "and" else str(a == "True" or b == "True")
            steps.append(f"{a} {op} {b} = {value}.")
            tokens[j - 1:j + 2] = [value]
    return tokens[0]


def evaluate_boolean(expression: str) -> tuple[str, list[str]]:
    """The value of ``"... is"`` and the steps that reach it (innermost brackets first)."""
    tokens = expression.split()[:-1]
    steps: list[str] = []
    while "(" in tokens:  # the first closing bracket ends an innermost pair: left to right
        j = tokens.index(")")
        i = j - 1 - tokens[j - 1::-1].index("(")
        inner = tokens[i + 1:j]
        value = _reduce(inner, steps)
        if len(inner) > 1:
            steps.append(f"So ( {' '.join(inner)} ) = {value}.")
        tokens[i:j + 1] = [value]
    value = _reduce(tokens, steps)
    assert value == str(eval(" ".join(expression.split()[:-1]))), expression  # an independent check
    return value, steps


def boolean_cot(expression: str) -> str:
    value, steps = evaluate_boolean(expression)
    return f"{PRECEDENCE} {' '.join(steps)} So the answer is {value}."


def random_boolean(rng: random.Random) -> str:
    def operand() -> str:
        return " ".join(["not"] * rng.choice([0, 0, 1, 2]) + [rng.choice(["True", "False"])])

    parts = []
    for _ in range(rng.randint(2, 4)):
        if rng.random() < 0.35:
            inner = operand() if rng.random() < 0.4 else f"{operand()} {rng.choice(['and', 'or'])} {operand()}"
            parts.append(("not " if rng.random() < 0.3 else "") + f"( {inner} )")
        else:
            parts.append(operand())
    text = parts[0]
    for p in parts[1:]:
        text += f" {rng.choice(['and', 'or'])} {p}"
    return text + " is"


def boolean_outputs(rng: random.Random, n: int = 200) -> list[dict[str, str]]:
    """``n`` distinct expressions with their reasoning (the teacher outputs of boolean_expressions)."""
    seen: dict[str, str] = {}
    while len(seen) < n:
        expression = random_boolean(rng)
        if expression not in seen:
            seen[expression] = boolean_cot(expression)
    return [{"input": k, "output": v} for k, v in seen.items()]


# -- reading comprehension: made-up towns, answers are spans of the context -------------------------------
TOWNS = ["Aldmoor", "Brackenford", "Caswell", "Dunmere", "Eskholt", "Fallowby", "Greywater", "Harrowgate",
         "Ivybridge", "Juniper Cross", "Kestrelton", "Larkhill", "Marrowbay", "Northwick", "Oakhurst",
         "Pellingham", "Quarry End", "Rookwood", "Saltmarsh", "Thornbury"]
COUNTRIES = ["Veldania", "Ostrava Minor", "the Republic of Kessa", "Lundmark"]
TRADES = ["wool", "salt", "timber", "copper", "cheese", "glass", "silk", "tin"]
RIVERS = ["Ost", "Wenn", "Calder", "Myrr", "Tavy", "Lune", "Brant", "Esk"]
LANDMARKS = ["stone bridge", "clock tower", "old mill", "harbour wall", "guildhall", "abbey gate"]
FESTIVALS = ["lantern", "harvest", "kite", "music", "boat", "apple"]
MONTHS = ["March", "May", "June", "August", "September", "October"]


def town_facts(rng: random.Random, town: str) -> tuple[str, list[tuple[str, str]]]:
    """A context passage about ``town`` and (question, answer) pairs whose answers appear in it verbatim."""
    country, trade, river = rng.choice(COUNTRIES), rng.choice(TRADES), rng.choice(RIVERS)
    landmark, festival, month = rng.choice(LANDMARKS), rng.choice(FESTIVALS), rng.choice(MONTHS)
    year, people = rng.randint(1150, 1890), f"{rng.randint(2, 95)},{rng.randint(100, 999)}"
    context = (f"{town} is a market town in the north of {country}. It was founded in {year} by settlers "
               f"from the coast and grew rich on the {trade} trade, which still gives the main square its "
               f"name. The river {river} runs through the old centre, where the {landmark} has stood for "
               f"more than three hundred years. Today about {people} people live in {town}. Its {festival} "
               f"festival, held every {month}, draws visitors from across {country}, and the town hall keeps "
               f"a small museum about its history.")
    questions = [(f"When was {town} founded?", str(year)),
                 (f"Which river runs through the centre of {town}?", river),
                 (f"What trade made {town} rich?", trade),
                 (f"How many people live in {town} today?", f"about {people}"),
                 (f"In which month is the {festival} festival of {town} held?", month)]
    return context, questions


def squad_outputs(rng: random.Random) -> list[dict[str, str]]:
    rows = []
    for town in TOWNS:
        context, questions = town_facts(rng, town)
        rows += [{"input": f"Question: {q} Context: {context}", "output": a} for q, a in questions]
    return rows


def nli_outputs() -> list[dict[str, str]]:
    rows = []
    for premise, entailed, neutral, contradicted in SCENES:
        for label, hypothesis in (("Entailment", entailed), ("Neutral", neutral), ("Contradiction", contradicted)):
            rows.append({"input": f"Premise: {premise} Hypothesis: {hypothesis}", "output": label})
    for fact, supported, unrelated in SCIENCE_FACTS:
        rows.append({"input": f"Premise: {fact} Hypothesis: {supported}", "output": "Entailment"})
        rows.append({"input": f"Premise: {fact} Hypothesis: {unrelated}", "output": "Neutral"})
    return rows


# -- task files ---------------------------------------------------------------------------------------------
def task(name: str, instruction: str, examples: list[tuple[str, str]], exclude: list[str]) -> dict:
    return {"name": name, "instruction": instruction,
            "examples": [{"input": i, "output": o} for i, o in examples], "source_datasets_to_exclude": exclude}


MNLI = task(
    "mnli",
    "Given a premise sentence and a hypothesis sentence, decide whether the premise entails the hypothesis "
    "(entailment), contradicts it (contradiction), or neither (neutral).",
    [("Premise: The library stays open late on Thursdays. Hypothesis: Many students study there on Thursday "
      "evenings.", "Neutral"),
     ("Premise: A storm knocked out the power across the whole valley last night. Hypothesis: The valley had "
      "no electricity last night.", "Entailment"),
     ("Premise: Tickets are free for children and adults. Hypothesis: Only children get free tickets.",
      "Contradiction")],
    ["multi_nli", "glue"])

SQUAD_CONTEXT = ("The Halden Observatory was built in 1904 on the summit of Mount Brae. Its great refractor "
                 "telescope, with a lens 90 centimetres across, was the largest in Europe until 1921. The "
                 "observatory closed to researchers in 1978, when city lights had grown too bright, and now "
                 "houses a planetarium run by the local university.")

SQUAD = task(
    "squad",
    "Answer the question using the context passage that follows it. The answer is a short span copied from "
    "the context: a name, a number, a date or a few words.",
    [(f"Question: When was the Halden Observatory built? Context: {SQUAD_CONTEXT}", "1904"),
     (f"Question: Why did the observatory close to researchers? Context: {SQUAD_CONTEXT}",
      "city lights had grown too bright")],
    ["squad"])

MCONALA = task(
    "mconala",
    "Write one line of Python that does what the Japanese instruction asks. Variables named in backquotes "
    "are already defined.",
    [("リスト`nums`の合計を求める", "sum(nums)"),
     ("文字列`s`を大文字に変換する", "s.upper()"),
     ("辞書`d`をキーで並べ替えたリストを得る", "sorted(d.items())")],
    ["neulab/mconala"])

BOOLEAN = task(
    "boolean_expressions",
    "Evaluate the truth value of a random Boolean expression built from the constants True and False, the "
    "operators and, or and not, and brackets.",
    [(e, boolean_cot(e)) for e in ("not ( True or False ) and True is", "False or not ( False and True ) is",
                                   "not not ( not True ) or False and True is")],
    [])


def _web_of_lies(names: list[str], first_truthful: bool, says_truth: list[bool]) -> tuple[str, str]:
    """A chain "A lies. B says A tells the truth. ..." and its step-by-step answer."""
    question = [f"{names[0]} {'tells the truth' if first_truthful else 'lies'}."]
    steps = [f"(1) {names[0]} {'tells the truth' if first_truthful else 'lies'}."]
    truthful = first_truthful
    for k, (name, claim) in enumerate(zip(names[1:], says_truth, strict=True), 2):
        said = "tells the truth" if claim else "lies"
        question.append(f"{name} says {names[k - 2]} {said}.")
        truthful = claim == truthful
        steps.append(f"({k}) {name} says {names[k - 2]} {said}; that is {'right' if truthful else 'wrong'}, "
                     f"so {name} {'tells the truth' if truthful else 'lies'}.")
    text = f"Question: {' '.join(question)} Does {names[-1]} tell the truth?"
    return text, f"{' '.join(steps)} So the answer is {'Yes' if truthful else 'No'}."


WEB_OF_LIES = task(
    "web_of_lies",
    "Evaluate the truth value of a Boolean function given as a short word problem about who lies and who "
    "tells the truth.",
    [_web_of_lies(["Ines", "Tomas", "Greta", "Pavel"], True, [True, False, False]),
     _web_of_lies(["Odile", "Ravi", "Sunniva", "Bram"], False, [True, True, False]),
     _web_of_lies(["Kaito", "Lena", "Moss"], False, [False, False])],
    [])

TEMPORAL = task(
    "temporal_sequences",
    "Given what a person did during the day and when, find the time when they could have done one more "
    "thing.",
    [("Today, Priya went to the bakery. Between what times could they have gone?\nWe know that:\nPriya woke up "
      "at 7am.\nOmar saw Priya jogging in the park from 7am to 9am.\nLeo saw Priya working at the office from "
      "9am to 3pm.\nThe bakery was closed after 5pm.\nBetween what times could Priya have gone to the "
      "bakery?\nOptions:\n(A) 7am to 9am\n(B) 3pm to 5pm\n(C) 9am to 3pm\n(D) 5pm to 7pm",
      "Priya was jogging from 7am to 9am and at the office from 9am to 3pm. The bakery closed at 5pm, so she "
      "was free only from 3pm to 5pm. So the answer is (B)."),
     ("Today, Jonas went to the swimming pool. Between what times could they have gone?\nWe know that:\nJonas "
      "woke up at 9am.\nMaria saw Jonas at the library from 10am to 1pm.\nEli saw Jonas fixing a bike from "
      "1pm to 6pm.\nThe swimming pool was closed after 6pm.\nBetween what times could Jonas have gone to the "
      "swimming pool?\nOptions:\n(A) 9am to 10am\n(B) 10am to 1pm\n(C) 1pm to 6pm\n(D) 6pm to 8pm",
      "Jonas woke at 9am and was at the library from 10am, then fixing a bike until 6pm, when the pool "
      "closed. The only free time was 9am to 10am. So the answer is (A)."),
     ("Today, Ada went to the post office. Between what times could they have gone?\nWe know that:\nAda woke "
      "up at 6am.\nSam saw Ada at the gym from 6am to 8am.\nKim saw Ada at the market from 8am to 11am.\nNed "
      "saw Ada painting at home from 2pm to 4pm.\nThe post office was closed after 4pm.\nBetween what times "
      "could Ada have gone to the post office?\nOptions:\n(A) 6am to 8am\n(B) 2pm to 4pm\n(C) 11am to "
      "2pm\n(D) 8am to 11am",
      "Ada was busy from 6am to 11am and again from 2pm to 4pm, when the post office closed. The free time "
      "was 11am to 2pm. So the answer is (C).")],
    [])

RUIN_NAMES = task(
    "ruin_names",
    "Choose the humorous one-letter or one-word edit of an artist or movie name.",
    [("Which of the following is a humorous edit of this artist or movie name: 'the lion king'?\nOptions:\n"
      "(A) the lion kings\n(B) the iron king\n(C) the lion kinf\n(D) thelion king",
      "'the iron king' changes lion to iron, a real word that makes a funny new title; the others are typos "
      "or plurals. So the answer is (B)."),
     ("Which of the following is a humorous edit of this artist or movie name: 'jurassic park'?\nOptions:\n"
      "(A) jurassic pork\n(B) jurasic park\n(C) jurassic parks\n(D) jurassicpark",
      "'jurassic pork' turns park into pork, a pun; the others are misspellings. So the answer is (A)."),
     ("Which of the following is a humorous edit of this artist or movie name: 'pink floyd'?\nOptions:\n"
      "(A) pink floyds\n(B) pinkfloyd\n(C) pink flayd\n(D) pink fluid",
      "'pink fluid' swaps floyd for fluid, which sounds alike and means something silly. So the answer is "
      "(D).")],
    [])

OBJECT_COUNTING = task(
    "object_counting",
    "Count the objects of the kind the question asks about in a list of possessions.",
    [("I have a banana, two plums, a chair, and a lemon. How many fruits do I have?",
      "The fruits are a banana (1), two plums (2) and a lemon (1); the chair is not a fruit. 1 + 2 + 1 = 4. So "
      "the answer is 4."),
     ("I have a violin, a drum, three lamps, and a flute. How many musical instruments do I have?",
      "The instruments are a violin (1), a drum (1) and a flute (1); lamps are not instruments. 1 + 1 + 1 = 3. "
      "So the answer is 3."),
     ("I have two cats, a goat, a table, and four fish. How many animals do I have?",
      "The animals are two cats (2), a goat (1) and four fish (4). 2 + 1 + 4 = 7. So the answer is 7.")],
    [])


def _sorting(words: list[str]) -> tuple[str, str]:
    ordered = sorted(words)
    return (f"Sort the following words alphabetically: List: {' '.join(words)}",
            f"The words in alphabetical order, by first letter and then the next: {', '.join(ordered)}. So the "
            f"answer is {' '.join(ordered)}.")


WORD_SORTING = task(
    "word_sorting",
    "Sort a list of words alphabetically.",
    [_sorting(["pear", "apple", "mango"]), _sorting(["river", "canyon", "delta", "bay"]),
     _sorting(["violet", "amber", "teal", "azure"])],
    [])

TASKS = (MNLI, SQUAD, MCONALA, BOOLEAN, WEB_OF_LIES, TEMPORAL, RUIN_NAMES, OBJECT_COUNTING, WORD_SORTING)
REASONING = {"boolean_expressions", "web_of_lies", "temporal_sequences", "ruin_names", "object_counting",
             "word_sorting"}
"""The chain-of-thought tasks (their outputs end "So the answer is X.")."""
