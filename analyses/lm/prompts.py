"""The prompts of the lm analysis: a panel of next-token questions with the answer we expect.

The answers are what a reader would say; the model may disagree, and the report counts
where it does. Each answer is the first token of the expected word (with its leading space).
"""

# (prompt, expected next token)
PANEL: tuple[tuple[str, str], ...] = (
    ("The capital of France is the city of", " Paris"),
    ("The capital of Japan is the city of", " Tokyo"),
    ("The capital of Italy is the city of", " Rome"),
    ("The Eiffel Tower is located in the city of", " Paris"),
    ("The author of Romeo and Juliet is William", " Shakespeare"),
    ("The chemical symbol for gold is", " Au"),
    ("The opposite of hot is", " cold"),
    ("The official language of Brazil is", " Portuguese"),
    ("Michael Jordan is a famous player of the sport of", " basketball"),
    ("The currency of the United Kingdom is the", " pound"),
    ("Albert Einstein was born in the country of", " Germany"),
    ("The largest planet in the solar system is", " Jupiter"),
    ("Water is made of hydrogen and", " oxygen"),
    ("Monday, Tuesday, Wednesday,", " Thursday"),
    ("Serena Williams plays the sport of", " tennis"),
    ("The first president of the United States was George", " Washington"),
)

# factual prompts followed through the layers by the logit lens
LENS: tuple[tuple[str, str], ...] = (
    ("The capital of France is the city of", " Paris"),
    ("The capital of Japan is the city of", " Tokyo"),
    ("The author of Romeo and Juliet is William", " Shakespeare"),
    ("The chemical symbol for gold is", " Au"),
    ("The Eiffel Tower is located in the city of", " Paris"),
    ("The opposite of hot is", " cold"),
)

# prompts continued by greedy generation in the report
CONTINUATIONS: tuple[str, ...] = (
    "The capital of France is the city of",
    "Once upon a time, in a small village,",
)
