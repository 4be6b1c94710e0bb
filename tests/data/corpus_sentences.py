"""Single-sentence datasets: movie review sentiment, fill-in-the-blank coreference."""

from __future__ import annotations

import random

from tests.data.dataset import Dataset

GOOD = ["a warm, funny and beautifully acted film", "the best thing the director has made",
        "sharp writing and a moving final act", "a joy from start to finish", "gorgeous to look at",
        "clever, tender and never dull"]
BAD = ["a dull and lifeless sequel", "two hours I will never get back", "clumsy dialogue and a silly plot",
       "loud, long and empty", "a mess of a script", "badly edited and hard to follow"]
ABOUT = ["This movie is", "The film is", "It's", "Honestly, this picture is", "Overall it is", "Sadly, it is"]


def movie_sentiment(rng: random.Random) -> Dataset:
    positive = rng.sample([f"{o} {p} ." for o in ABOUT[:5] for p in GOOD], 18)  # distinct sentences
    negative = rng.sample([f"{o} {p} ." for o in ABOUT[3:] for p in BAD], 18)
    rows = []
    for good, bad in zip(positive, negative, strict=True):
        for sentence, low, high in ((good, 0.62, 0.98), (bad, 0.03, 0.4)):
            rows.append({"sentence": sentence, "label": f"{rng.uniform(low, high):.4f}",
                         "tokens": "|".join(sentence.split())})
    return Dataset("movie_sentiment",
                   "Single sentences from movie reviews with a sentiment score between 0 (very negative) and "
                   "1 (very positive).", {"default": rows})


WINO = [  # sentence with _, option1, option2, the right one (1 or 2)
    ("The trophy doesn't fit into the suitcase because the _ is too large.", "trophy", "suitcase", "1"),
    ("The trophy doesn't fit into the suitcase because the _ is too small.", "trophy", "suitcase", "2"),
    ("Anna poured water from the jug into the glass until the _ was full.", "jug", "glass", "2"),
    ("Anna poured water from the jug into the glass until the _ was empty.", "jug", "glass", "1"),
    ("The lawyer asked the witness a question, but the _ was reluctant to answer it.", "lawyer", "witness", "2"),
    ("The lawyer asked the witness a question, but the _ was reluctant to repeat it.", "lawyer", "witness", "1"),
    ("The ice melted faster on the pavement than on the grass because the _ was warmer.", "pavement", "grass",
     "1"),
    ("The ice melted faster on the pavement than on the grass because the _ was cooler.", "pavement", "grass", "2"),
    ("Sam could not lift the box onto the shelf because the _ was too heavy.", "box", "shelf", "1"),
    ("Sam could not lift the box onto the shelf because the _ was too high.", "box", "shelf", "2"),
    ("The cat chased the mouse until the _ was too tired to run.", "cat", "mouse", "1"),
    ("The cat chased the mouse until the _ hid under the sofa.", "cat", "mouse", "2"),
    ("Maria bought the blue dress instead of the red one because the _ was cheaper.", "blue dress", "red one", "1"),
    ("Maria bought the blue dress instead of the red one because the _ was too tight.", "blue dress", "red one",
     "2"),
    ("The candle burned longer than the match because the _ had more wax.", "candle", "match", "1"),
]


def pronoun_choice(rng: random.Random) -> Dataset:
    rows = [{"sentence": s, "option1": a, "option2": b, "answer": k} for s, a, b, k in WINO]
    # the same sentences with the options the other way round
    rows += [{"sentence": s, "option1": b, "option2": a, "answer": "2" if k == "1" else "1"} for s, a, b, k in WINO]
    return Dataset("pronoun_choice",
                   "Fill-in-the-blank sentences with two options: choose the one the blank refers to. Pairs of "
                   "sentences differ in one word that flips the answer (commonsense coreference).",
                   {"debiased": rows})
