"""Python programming problems with solutions and tests, in two configs."""

from __future__ import annotations

import random

from tests.data.dataset import Dataset

PROGRAMS = [  # description, function name, body, a test call, its result
    ("find the largest of three numbers", "max_of_three", "def max_of_three(a, b, c):\n    return max(a, b, c)",
     "max_of_three(3, 9, 4)", "9"),
    ("reverse a string", "reverse_string", "def reverse_string(s):\n    return s[::-1]",
     "reverse_string('abc')", "'cba'"),
    ("count the vowels in a string", "count_vowels",
     "def count_vowels(s):\n    return sum(1 for ch in s.lower() if ch in 'aeiou')", "count_vowels('Banana')", "3"),
    ("check whether a number is prime", "is_prime",
     "def is_prime(n):\n    if n < 2:\n        return False\n    for d in range(2, int(n ** 0.5) + 1):\n"
     "        if n % d == 0:\n            return False\n    return True", "is_prime(13)", "True"),
    ("compute the factorial of n", "factorial",
     "def factorial(n):\n    result = 1\n    for k in range(2, n + 1):\n        result *= k\n    return result",
     "factorial(5)", "120"),
    ("remove duplicates from a list while keeping the order", "dedupe",
     "def dedupe(items):\n    seen = set()\n    return [x for x in items if not (x in seen or seen.add(x))]",
     "dedupe([1, 2, 1, 3, 2])", "[1, 2, 3]"),
    ("find the sum of the digits of a number", "digit_sum",
     "def digit_sum(n):\n    return sum(int(d) for d in str(abs(n)))", "digit_sum(1234)", "10"),
    ("check whether a string is a palindrome", "is_palindrome",
     "def is_palindrome(s):\n    s = s.lower()\n    return s == s[::-1]", "is_palindrome('Level')", "True"),
    ("return the n-th Fibonacci number", "fib",
     "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a", "fib(10)", "55"),
    ("count how often each word occurs in a sentence", "word_counts",
     "def word_counts(text):\n    counts = {}\n    for w in text.split():\n        counts[w] = counts.get(w, 0) + 1\n"
     "    return counts", "word_counts('a b a')", "{'a': 2, 'b': 1}"),
    ("find the second smallest number in a list", "second_smallest",
     "def second_smallest(nums):\n    return sorted(set(nums))[1]", "second_smallest([4, 1, 3, 1])", "3"),
    ("convert Celsius to Fahrenheit", "to_fahrenheit", "def to_fahrenheit(c):\n    return c * 9 / 5 + 32",
     "to_fahrenheit(100)", "212.0"),
    ("flatten a list of lists", "flatten", "def flatten(lists):\n    return [x for sub in lists for x in sub]",
     "flatten([[1, 2], [3]])", "[1, 2, 3]"),
    ("find the greatest common divisor of two numbers", "gcd",
     "def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a", "gcd(12, 18)", "6"),
    ("capitalise the first letter of every word", "title_case",
     "def title_case(text):\n    return ' '.join(w[:1].upper() + w[1:] for w in text.split())",
     "title_case('hello big world')", "'Hello Big World'"),
]


def python_problems(rng: random.Random) -> Dataset:
    full, sanitized = [], []
    for i, (what, name, code, call, result) in enumerate(PROGRAMS):
        tests = str([f"assert {call} == {result}"])
        full.append({"task_id": str(600 + i), "text": f"Write a python function to {what}.", "code": code,
                     "test_list": tests, "test_setup_code": "", "challenge_test_list": "[]"})
        full.append({"task_id": str(700 + i), "text": f"Write a function to {what} (named {name}).",
                     "code": code.replace("\n    ", "\n\t"), "test_list": tests, "test_setup_code": "",
                     "challenge_test_list": "[]"})
        if i % 2 == 0:
            sanitized.append({"source_file": "Benchmark Questions Verification V2.ipynb", "task_id": str(600 + i),
                              "prompt": f"Write a function to {what}.", "code": code, "test_imports": "[]",
                              "test_list": tests})
    return Dataset("python_problems",
                   "Short Python programming problems: a one-sentence task description, a reference solution "
                   "and assert-based tests. Two configs: `full` and the hand-checked `sanitized` subset.",
                   {"full": full, "sanitized": sanitized})
