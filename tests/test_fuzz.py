"""Property-based fuzzing (hypothesis) of everything that takes a user's input.

Each target either accepts its input (and then behaves as documented) or refuses it with a
``ValueError`` that names what to change; nothing raises anything else. The number of
examples comes from the hypothesis profile in ``tests/conftest.py`` (200 in CI,
``HYPOTHESIS_PROFILE=dev`` for many more). Examples that once failed are pinned with
``@example`` so that they stay fixed.
"""

import dataclasses
import math
import struct
import typing
from typing import Literal, Optional

import pytest
import torch
from hypothesis import assume, event, example, given
from hypothesis import strategies as st

import analyses
from interp.config import apply_overrides, parse_value
from models import checkpoint as ckpt
from models.transformer.config import TransformerConfig
from models.transformer.tokenizer import CharTokenizer, WordTokenizer, load_tokenizer

# ---------------------------------------------------------------------------- tokenizers


@given(corpus=st.text(min_size=1, max_size=60), data=st.data())
def test_char_tokenizer_round_trips_seen_text(corpus, data):
    tok = CharTokenizer.from_corpus(corpus)
    text = data.draw(st.text(alphabet=sorted(set(corpus)), max_size=40))
    tokens = tok.to_tokens(text)
    assert tokens.shape == (1, len(text) + 1) and tokens[0, 0] == tok.bos_token_id
    assert tok.to_string(tokens[0]) == text
    assert tok.unk_token_id not in tokens.tolist()[0]


@given(corpus=st.text(max_size=30), text=st.text(max_size=40))
def test_char_tokenizer_maps_unseen_characters_to_unk(corpus, text):
    tok = CharTokenizer.from_corpus(corpus)
    pieces = tok.to_str_tokens(text)
    assert pieces[0] == "<bos>" and len(pieces) == len(text) + 1
    assert pieces[1:] == [c if c in corpus else "<unk>" for c in text]


@given(corpus=st.text(max_size=80), text=st.text(max_size=60))
def test_word_tokenizer_round_trips_what_it_has_seen_and_marks_the_rest(corpus, text):
    tok = WordTokenizer.from_corpus(corpus)
    words = tok.split(text)
    decoded = tok.to_string(tok.to_tokens(text)[0])
    seen = set(tok.split(corpus))
    assert decoded == " ".join(w if w in seen else "<unk>" for w in words)
    assert tok.to_string(tok.to_tokens(corpus)[0]) == " ".join(tok.split(corpus))


@given(corpus=st.text(max_size=60), kind=st.sampled_from([CharTokenizer, WordTokenizer]))
def test_tokenizers_save_and_load_unchanged(tmp_path_factory, corpus, kind):
    tok = kind.from_corpus(corpus)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(path)
    again = load_tokenizer(path)
    assert type(again) is kind and again.vocab == tok.vocab


@given(ids=st.lists(st.integers(-5, 50), max_size=10))
@example(ids=[-1])  # decoded silently as the last token of the vocabulary
@example(ids=[6])  # an IndexError from deep inside
def test_decoding_ids_outside_the_vocabulary_is_a_value_error(ids):
    tok = CharTokenizer.from_corpus("abc")
    try:
        text = tok.to_string(torch.tensor(ids, dtype=torch.long))
    except ValueError as e:
        assert "token id" in str(e), str(e)
        assert any(not 0 <= i < tok.d_vocab for i in ids)
    else:
        assert all(0 <= i < tok.d_vocab for i in ids), f"ids {ids} decoded to {text!r}"


# ---------------------------------------------------------------------------- configs


def values_of(annotation) -> st.SearchStrategy:
    """Values of a field's declared type, edge cases included (zero, negatives, nan, empty)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.one_of(st.integers(-3, 70), st.sampled_from([-(2**31), 10**6, 2**40]))
    if annotation is float:
        return st.one_of(st.floats(-10, 10), st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 1e300]))
    if annotation is str:
        return st.text(max_size=12)
    if origin is Literal:
        return st.one_of(st.sampled_from(args), st.text(max_size=6))
    if origin is typing.Union or type(None) in args:
        return st.one_of(*(st.none() if a is type(None) else values_of(a) for a in args))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(values_of(args[0]), max_size=4).map(tuple)
    if origin is tuple:
        return st.tuples(*(values_of(a) for a in args))
    raise AssertionError(f"no strategy for {annotation!r}: add one to values_of")


def some_fields(cls, **fixed) -> st.SearchStrategy:
    """A dict giving random values to a random subset of a dataclass's init fields."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: values_of(hints[f.name]) for f in dataclasses.fields(cls) if f.init}
    return st.fixed_dictionaries(fixed, optional={k: v for k, v in fields.items() if k not in fixed})


def is_of_type(value, annotation) -> bool:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if origin is Literal:
        return value in args
    if origin is typing.Union or type(None) in args:
        return any(is_of_type(value, a) for a in args if a is not type(None)) or (value is None and type(None) in args)
    if origin is tuple:
        return isinstance(value, tuple)
    return True


def assert_valid_or_names_the_field(cls, fields: dict):
    try:
        config = cls(**fields)
    except ValueError as e:
        named = [name for name in fields if name in str(e)]
        assert named, f"{cls.__qualname__}({fields}) raised a ValueError naming none of the fields set: {e}"
        return None
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        assert is_of_type(value, hints[f.name]), f"{cls.__qualname__} accepted {f.name}={value!r}"
    return config


NUMBERS = st.one_of(st.integers(-3, 70), st.booleans(), st.none(), st.floats(allow_nan=True), st.text(max_size=4))
TRANSFORMER_FIELDS = st.fixed_dictionaries(
    {name: st.one_of(st.integers(1, 16), NUMBERS) for name in ("d_model", "n_layers", "n_heads", "d_vocab", "n_ctx")}
    | {"d_mlp": st.one_of(st.integers(1, 64), NUMBERS)},
    optional={
        "d_head": st.one_of(st.integers(1, 16), NUMBERS),
        "act_fn": st.one_of(st.sampled_from(["relu", "gelu", "gelu_new", "silu"]), NUMBERS),
        "normalization": st.one_of(st.sampled_from(["LN", "RMS", None]), NUMBERS),
        "positional_embedding": st.one_of(st.sampled_from(["standard", "rotary"]), NUMBERS),
        "rotary_base": NUMBERS,
        "rotary_dim": st.one_of(st.integers(1, 16), NUMBERS),
        "gated_mlp": st.one_of(st.booleans(), NUMBERS),
        "n_key_value_heads": st.one_of(st.integers(1, 8), NUMBERS),
        "tied_embeddings": st.one_of(st.booleans(), NUMBERS),
        "use_bias": st.one_of(st.booleans(), NUMBERS),
        "init_range": NUMBERS,
        "eps": NUMBERS,
        "seed": NUMBERS,
    },
)


@given(fields=TRANSFORMER_FIELDS)
@example(fields={"d_model": 4, "n_layers": 1, "n_heads": 1, "d_vocab": 4, "n_ctx": 4, "d_mlp": True})
@example(fields={"d_model": 4, "n_layers": 1, "n_heads": 1, "d_vocab": 4, "n_ctx": 4, "d_mlp": 4, "eps": "a"})
@example(fields={"d_model": 4, "n_layers": 1, "n_heads": 1, "d_vocab": 4, "n_ctx": 4, "d_mlp": 4,
                 "positional_embedding": "rotary", "rotary_base": "1"})
def test_transformer_config_is_valid_or_names_the_field(fields):
    config = assert_valid_or_names_the_field(TransformerConfig, fields)
    if config is not None:
        assert config.d_head > 0 and config.n_heads % config.n_kv_heads == 0
        assert config.eps > 0 and config.init_range > 0 and math.isfinite(config.eps)


@pytest.mark.parametrize("name", list(analyses.ANALYSES))
def test_every_analysis_config_is_valid_or_names_the_field(name):
    cls = analyses.get(name).Config

    @given(fields=some_fields(cls))
    def check(fields):
        assert_valid_or_names_the_field(cls, fields)

    check()


# shrunk examples the fuzzing found: each raised a ValueError that named no field it was given
FOUND = [
    ("backprop", {"shapes": ("",)}),
    ("superposition", {"dim_features": 0}),
    ("superposition", {"intro_steps": 0}),
    ("jl", {"eps_values": (0.0,)}),
    ("jl", {"eps_values": ()}),
]


@pytest.mark.parametrize("name, fields", FOUND)
def test_config_errors_the_fuzzing_found_name_their_field(name, fields):
    with pytest.raises(ValueError) as error:
        analyses.get(name).Config(**fields)
    assert any(field in str(error.value) for field in fields), str(error.value)


# ---------------------------------------------------------------------------- --set key=value


@dataclasses.dataclass(frozen=True)
class Overridable:
    steps: int = 10
    lr: float = 1e-3
    verbose: bool = False
    name: str = "x"
    limit: Optional[int] = None
    widths: tuple[int, ...] = (1, 2)
    scales: tuple[float, ...] = ()
    mode: Literal["a", "b"] = "a"


def as_text(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(as_text(v) for v in value)
    if value is None:
        return "none"
    return repr(value) if isinstance(value, float) else str(value)


def same(a, b) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


FIELD_VALUES = st.one_of(
    st.tuples(st.just("steps"), st.integers()),
    st.tuples(st.just("lr"), st.floats()),
    st.tuples(st.just("verbose"), st.booleans()),
    st.tuples(st.just("name"), st.text(st.characters(blacklist_categories=["Cs"]), max_size=8).map(str.strip)),
    st.tuples(st.just("limit"), st.one_of(st.none(), st.integers())),
    st.tuples(st.just("widths"), st.lists(st.integers(), max_size=4).map(tuple)),
    st.tuples(st.just("scales"), st.lists(st.floats(), max_size=4).map(tuple)),
)


@given(assignments=st.lists(FIELD_VALUES, max_size=4))
def test_set_round_trips_every_value_of_the_declared_type(assignments):
    config = apply_overrides(Overridable(), [f"{k}={as_text(v)}" for k, v in assignments])
    for key, value in dict(assignments).items():
        assert same(value, getattr(config, key)), (key, value, getattr(config, key))


@given(key=st.sampled_from([f.name for f in dataclasses.fields(Overridable)]), text=st.text(max_size=12))
@example(key="steps", text="1e400")
@example(key="steps", text="1e-3")
@example(key="steps", text="2.5")
@example(key="widths", text="1,2.5")
@example(key="mode", text="c")
def test_set_parses_the_declared_type_or_refuses_with_a_message(key, text):
    try:
        config = apply_overrides(Overridable(), [f"{key}={text}"])
    except ValueError as e:
        assert str(e).startswith(f"--set {key}: ") and len(str(e)) > len(f"--set {key}: "), str(e)
        return
    hints = typing.get_type_hints(Overridable)
    value = getattr(config, key)
    assert is_of_type(value, hints[key]), f"--set {key}={text!r} gave {value!r}"
    if hints[key] is int or typing.get_args(hints[key]) == (int, ...):
        numbers = value if isinstance(value, tuple) else (value,)
        assert all(isinstance(n, int) for n in numbers)
        assert "." not in text.replace("e", "") or all(float(t) == int(float(t)) for t in text.strip("()[]").split(",") if t.strip())


@given(assignment=st.text(max_size=16))
def test_set_with_an_unknown_key_or_no_equals_sign_says_so(assignment):
    try:
        apply_overrides(Overridable(), [assignment])
    except ValueError as e:
        message = str(e)
        assert message.startswith(("--set expects key=value", "Overridable has no field", "--set ")), message
    else:
        assert assignment.split("=", 1)[0].strip() in {f.name for f in dataclasses.fields(Overridable)}


@pytest.mark.parametrize("name", list(analyses.ANALYSES))
def test_set_on_every_analysis_config_is_valid_or_a_value_error(name):
    cls = analyses.get(name).Config
    keys = [f.name for f in dataclasses.fields(cls) if f.init]
    text = st.one_of(st.text(max_size=8), st.integers(-3, 99).map(str), st.sampled_from(["nan", "inf", "-1", "0", "1e9", "", "true"]))

    @given(assignments=st.lists(st.tuples(st.sampled_from(keys), text), max_size=3))
    def check(assignments):
        try:
            apply_overrides(cls(), [f"{k}={v}" for k, v in assignments])
        except ValueError as e:
            assert str(e), assignments

    check()


def test_parse_value_refuses_integers_that_are_not_whole():
    for text in ("1e-3", "2.5", "1e400", "nan"):
        with pytest.raises(ValueError, match="not a valid int"):
            parse_value(text, int)
    assert parse_value("1e3", int) == 1000 and parse_value("-7", int) == -7


# ---------------------------------------------------------------------------- checkpoint bytes


def valid_checkpoint() -> bytes:
    import safetensors.torch

    return safetensors.torch.save(
        {"W_E": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([7, -1]), "m": torch.ones(3, dtype=torch.bool)},
        metadata={"note": "fuzz"},
    )


VALID = valid_checkpoint()
HEADER = struct.unpack("<Q", VALID[:8])[0]


def damaged(raw: bytes, cut: int, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(raw[:cut])
    for index, value in flips:
        if index < len(out):
            out[index] ^= value
    return bytes(out)


@given(
    cut=st.integers(0, len(VALID)),
    flips=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(1, 255)), max_size=4),
)
@example(cut=len(VALID), flips=[(0, 0x80)])  # header length + 128: a first byte that looks like a pickle
def test_damaged_checkpoint_bytes_are_refused_or_load(tmp_path_factory, cut, flips):
    raw = damaged(VALID, cut, flips)
    assume(raw != VALID)
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    path.write_bytes(raw)
    try:
        tensors, metadata = ckpt.load_tensors(path)
    except ValueError as e:
        assert "safetensors file" in str(e), str(e)
        return
    # it loaded: the header still describes the data exactly, so only values (or names,
    # dtypes and shapes, consistently) changed; the file was not truncated
    assert cut == len(VALID)
    assert sum(t.numel() * t.element_size() for t in tensors.values()) == len(raw) - 8 - struct.unpack("<Q", raw[:8])[0]


# ---------------------------------------------------------------------------- token tensors


@pytest.fixture(scope="module")
def tiny_transformer():
    from models.transformer import Transformer

    return Transformer(TransformerConfig(d_model=8, n_layers=1, n_heads=2, d_mlp=16, d_vocab=11, n_ctx=6)).eval()


TOKEN_DTYPES = [torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64, torch.float32, torch.bool]


@given(
    dtype=st.sampled_from(TOKEN_DTYPES),
    shape=st.lists(st.integers(0, 8), min_size=0, max_size=3),
    low=st.integers(-3, 12),
    span=st.integers(0, 4),
    return_type=st.sampled_from(["logits", "loss", "both"]),
)
@example(dtype=torch.int8, shape=[1, 3], low=0, span=2, return_type="logits")  # IndexError inside the embedding
@example(dtype=torch.uint8, shape=[1, 2], low=1, span=0, return_type="logits")  # indexed W_E as a boolean mask
@example(dtype=torch.int64, shape=[1, 0], low=0, span=0, return_type="loss")  # no token at all
def test_token_tensors_give_logits_or_a_value_error(tiny_transformer, dtype, shape, low, span, return_type):
    model = tiny_transformer
    values = torch.arange(max(math.prod(shape), 1)) % (span + 1) + low
    tokens = values[: math.prod(shape)].reshape(shape).to(dtype) if dtype != torch.bool else \
        (values[: math.prod(shape)].reshape(shape) % 2).bool()
    try:
        with torch.no_grad():
            out = model(tokens, return_type=return_type)
    except ValueError as e:
        assert str(e), (dtype, shape)
        return
    batch_pos = tuple(tokens.shape) if tokens.ndim == 2 else (1, *tokens.shape)
    assert tokens.ndim in (1, 2) and not tokens.is_floating_point() and tokens.dtype != torch.bool
    assert 0 < batch_pos[-1] <= model.cfg.n_ctx, f"accepted {batch_pos[-1]} positions"
    logits = out[0] if return_type == "both" else out if return_type == "logits" else None
    if logits is not None:
        assert logits.shape == (*batch_pos, model.cfg.d_vocab) and torch.isfinite(logits).all()
    if return_type != "logits":
        loss = out[1] if return_type == "both" else out
        assert torch.isfinite(loss).all(), f"loss {loss} for tokens of shape {tuple(tokens.shape)}"


# ---------------------------------------------------------------------------- patching and tracing
#
# A call is drawn valid except for the arguments in its ``broken`` set (at most two, often none):
# then it must return what the docstring promises (and the same numbers as a plain hooked
# reference), or raise a ValueError naming one of the broken arguments.


class Call(typing.NamedTuple):
    broken: frozenset
    kwargs: dict


@pytest.fixture(scope="module")
def two_layers():
    from models.transformer import Transformer

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return Transformer(TransformerConfig(d_model=8, n_layers=2, n_heads=2, d_mlp=16, d_vocab=11, n_ctx=6)).eval()


def token_grid(batch: int, n_pos: int) -> st.SearchStrategy:
    return st.lists(st.integers(0, 10), min_size=batch * n_pos, max_size=batch * n_pos).map(
        lambda ids: torch.tensor(ids, dtype=torch.long).reshape(batch, n_pos))


def broken_tokens(draw, clean: torch.Tensor, corrupted: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A pair the model or the patching cannot take (d_vocab 11, n_ctx 6)."""
    how = draw(st.sampled_from(["lengths differ", "batches differ", "no token", "longer than n_ctx",
                                "an id outside the vocabulary", "no batch dim"]))
    batch, n_pos = clean.shape
    if how == "lengths differ":
        return clean, torch.cat([corrupted, corrupted[:, :1]], 1)
    if how == "batches differ":
        return clean, torch.cat([corrupted, corrupted[:1]])
    if how == "no token":
        return clean[:, :0], corrupted[:, :0]
    if how == "longer than n_ctx":
        return clean.repeat(1, 7)[:, :7], corrupted.repeat(1, 7)[:, :7]
    if how == "an id outside the vocabulary":
        corrupted = corrupted.clone()
        corrupted[draw(st.integers(0, batch - 1)), draw(st.integers(0, n_pos - 1))] = draw(st.sampled_from([-1, 11]))
        return clean, corrupted
    return clean[0], corrupted[0]


# name -> (metric of [batch pos d_vocab] logits, the per_example it fits: False a scalar, True [batch], None neither)
PATCH_METRICS = {
    "scalar, last position": (lambda lg: lg[:, -1, 3].mean() - lg[:, -1, 5].mean(), False),
    "scalar, every position": (lambda lg: lg[..., 3].mean(), False),
    "python float": (lambda lg: float(lg[:, -1, 3].mean()), False),
    "[batch], last position": (lambda lg: lg[:, -1, 3] - lg[:, -1, 5], True),
    "[batch], every position": (lambda lg: lg[..., 3].mean(-1), True),
    "[batch + 1]": (lambda lg: torch.cat([lg[:, -1, 3], lg[:1, -1, 3]]), None),
    "[batch 2]": (lambda lg: lg[:, -1, :2], None),
    "a string": (lambda lg: "logit difference", None),
    "None": (lambda lg: None, None),
}
PATCH_ARGUMENTS = ("tokens", "activation", "direction", "layers", "metric", "max_rows")
BAD_LAYERS = [-1, -2, 2, 3, 1.5, "1", True, None]


@st.composite
def patching_calls(draw) -> Call:
    from interp.patching import DIRECTIONS
    from interp.hook_names import PATCHABLE as HOOKS

    broken = frozenset(draw(st.sets(st.sampled_from(PATCH_ARGUMENTS), max_size=2)))
    batch, n_pos = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    clean, corrupted = draw(token_grid(batch, n_pos)), draw(token_grid(batch, n_pos))
    if "tokens" in broken:
        clean, corrupted = broken_tokens(draw, clean, corrupted)
    activation = draw(st.text(max_size=8).filter(lambda a: a not in HOOKS) if "activation" in broken
                      else st.sampled_from(list(HOOKS)))
    direction = draw(st.text(max_size=8).filter(lambda d: d not in DIRECTIONS) if "direction" in broken
                     else st.sampled_from(DIRECTIONS))
    valid_layers = st.lists(st.integers(0, 1), max_size=4)  # duplicates and any order are fine
    if "layers" in broken:  # empty, not a list, or holding one bad entry
        layers = draw(st.one_of(st.just([]), st.sampled_from([2, "0", 1.5]), st.builds(
            lambda ok, bad, at: ok[:at] + [bad] + ok[at:], valid_layers, st.sampled_from(BAD_LAYERS), st.integers(0, 4))))
    else:
        layers = draw(st.one_of(st.none(), valid_layers.filter(bool)))
    per_example = draw(st.booleans())
    fits = [name for name, (_, fit) in PATCH_METRICS.items() if (fit == per_example) != ("metric" in broken)]
    metric = draw(st.sampled_from(fits))
    max_rows = draw(st.one_of(st.integers(-2, 0), st.sampled_from([2.5, "8", True])) if "max_rows" in broken
                    else st.integers(1, 40))
    return Call(broken, dict(clean_tokens=clean, corrupted_tokens=corrupted, metric=metric, activation=activation,
                             direction=direction, layers=layers, per_example=per_example, max_rows=max_rows))


def patched_one_by_one(model, clean_tokens, corrupted_tokens, metric, activation, direction, layers, per_example,
                       **_) -> torch.Tensor:
    """TransformerLens's procedure: one forward per site, a hook writing the donor's activation."""
    from interp.patching import hook_name

    donor, receiver = (clean_tokens, corrupted_tokens) if direction == "denoise" else (corrupted_tokens, clean_tokens)
    layers = range(model.cfg.n_layers) if layers is None else layers
    names = [hook_name(activation, layer) for layer in layers]
    _, cache = model.run_with_cache(donor, names_filter=lambda name: name in names)
    heads = model.cfg.n_heads if activation == "z" else 1
    rows = []
    for name in names:
        for pos in range(receiver.shape[1]):
            for head in range(heads):
                index = (slice(None), pos, head) if activation == "z" else (slice(None), pos)

                def write(act, hook, index=index, name=name):
                    act[index] = cache[name][index]
                    return act

                rows.append(torch.as_tensor(metric(model.run_with_hooks(receiver, fwd_hooks=[(name, write)]))))
    shape = (len(names), receiver.shape[1]) + ((heads,) if activation == "z" else ()) + \
        ((receiver.shape[0],) if per_example else ())
    return torch.stack(rows).float().reshape(shape)


def assert_names_a_broken_argument(error: ValueError, call: Call, aliases: dict) -> None:
    assert call.broken, f"refused a valid call: {error}\n{call}"
    named = [arg for arg in call.broken if aliases.get(arg, arg) in str(error)]
    assert named, f"the ValueError names none of the broken arguments {sorted(call.broken)}: {error}\n{call}"


def patch_call(broken=(), **changes) -> Call:
    """A one-token call with ``changes``, for the pinned examples."""
    call = dict(clean_tokens=torch.tensor([[0]]), corrupted_tokens=torch.tensor([[0]]), metric="scalar, last position",
                activation="resid_pre", direction="denoise", layers=None, per_example=False, max_rows=1)
    return Call(frozenset(broken), {**call, **changes})


@given(call=patching_calls())
@example(call=patch_call({"layers"}, layers=[]))  # RuntimeError inside torch.cartesian_prod
@example(call=patch_call({"layers"}, layers=2))  # TypeError: 'int' object is not iterable
@example(call=patch_call({"layers"}, layers=[2]))  # a ValueError naming the hook 'blocks.2.hook_resid_pre' only
@example(call=patch_call({"layers"}, layers=[1.5]))  # TypeError
@example(call=patch_call({"metric"}, metric="None"))  # RuntimeError: Could not infer dtype of NoneType
@example(call=patch_call({"metric"}, metric="a string"))  # TypeError: new(): invalid data type 'str'
@example(call=patch_call({"max_rows"}, max_rows=0))  # taken as 1
def test_patching_returns_its_documented_shape_or_names_the_argument(two_layers, call):
    from interp.patching import activation_patching

    model, kwargs = two_layers, dict(call.kwargs, metric=PATCH_METRICS[call.kwargs["metric"]][0])
    try:
        with torch.no_grad():
            effect = activation_patching(model, **kwargs)
    except ValueError as e:
        assert_names_a_broken_argument(e, call, {"tokens": "token"})
        event("refused")
        return
    assert not call.broken, f"accepted a call with broken {sorted(call.broken)}: {call}"
    event(f"returned ({kwargs['activation']})")
    clean = kwargs["clean_tokens"]
    n_layers = model.cfg.n_layers if kwargs["layers"] is None else len(kwargs["layers"])
    expected = (n_layers, clean.shape[1]) + ((model.cfg.n_heads,) if kwargs["activation"] == "z" else ()) + \
        ((clean.shape[0],) if kwargs["per_example"] else ())
    assert tuple(effect.shape) == expected and torch.isfinite(effect).all(), (tuple(effect.shape), expected)
    with torch.no_grad():
        reference = patched_one_by_one(model, **kwargs)
    assert torch.allclose(effect, reference, rtol=1e-4, atol=1e-5), (
        f"the batched sweep differs from one forward per site by {(effect - reference).abs().max():.2e}: {call}")


# name -> (metric of [samples pos d_vocab] logits, whether it returns the [samples] a trace needs)
TRACE_METRICS = {
    "[samples], last position": (lambda lg: torch.softmax(lg[:, -1], -1)[:, 3], True),
    "[samples], every position": (lambda lg: lg[..., 3].mean(-1), True),
    "scalar": (lambda lg: lg[:, -1, 3].mean(), False),
    "[samples + 1]": (lambda lg: torch.cat([lg[:, -1, 3], lg[:1, -1, 3]]), False),
    "[samples 2]": (lambda lg: lg[:, -1, :2], False),
    "a string": (lambda lg: "probability", False),
}
TRACE_ARGUMENTS = ("tokens", "subject", "answer", "metric", "kinds", "samples", "window", "noise_std", "seed",
                   "max_rows")
COUNT_MISTAKES = st.one_of(st.integers(-2, 0), st.sampled_from([1.5, True, "2", None]))
HUGE_NOISE = 1e6  # a noise so large may overflow the model's float32 activations


@st.composite
def tracing_calls(draw) -> Call:
    from interp.hook_names import TRACE_KINDS

    broken = frozenset(draw(st.sets(st.sampled_from(TRACE_ARGUMENTS), max_size=2)))
    n_pos = draw(st.integers(1, 6))
    tokens = draw(token_grid(1, n_pos))
    if "tokens" in broken:
        how = draw(st.sampled_from(["two prompts", "no token", "longer than n_ctx", "an id outside the vocabulary"]))
        if how == "two prompts":
            tokens = tokens.repeat(2, 1)
        elif how == "no token":
            tokens = tokens[:, :0]
        elif how == "longer than n_ctx":
            tokens, n_pos = tokens.repeat(1, 7)[:, :7], 7
        else:
            tokens = tokens.clone()
            tokens[0, draw(st.integers(0, n_pos - 1))] = draw(st.sampled_from([-1, 11]))
    elif draw(st.booleans()):
        tokens = tokens[0]  # one prompt without its batch dim is taken too
    start = draw(st.integers(0, max(n_pos - 1, 0)))
    subject = (start, draw(st.integers(start + 1, max(n_pos, start + 1))))
    if "subject" in broken:
        subject = draw(st.one_of(
            st.integers(0, n_pos).map(lambda i: (i, i)),  # empty
            st.tuples(st.integers(0, n_pos - 1), st.integers(1, 3)).map(lambda s: (s[0] + s[1], s[0])),  # reversed
            st.tuples(st.integers(-3, -1), st.integers(1, n_pos)), st.just((0, n_pos + 1)),  # out of range
            st.sampled_from([(0, 1, 2), (0.5, 1), 1, None, "ab"])))
    answer, metric = draw(st.integers(0, 10)), None
    if draw(st.booleans()):
        answer, metric = None, draw(st.sampled_from([name for name, (_, fit) in TRACE_METRICS.items() if fit]))
    if "answer" in broken:  # out of range or not an id, or given with a metric, or neither given
        answer, metric = draw(st.one_of(
            st.tuples(st.sampled_from([-1, 11, 2.5, "3", True]), st.none()),
            st.tuples(st.integers(0, 10), st.just("[samples], last position")), st.just((None, None))))
    elif "metric" in broken:
        answer, metric = None, draw(st.sampled_from([name for name, (_, fit) in TRACE_METRICS.items() if not fit]))
    valid_kinds = st.lists(st.sampled_from(list(TRACE_KINDS)), min_size=1, max_size=3)
    kinds = draw(st.one_of(st.just([]), st.sampled_from(["resid", None]), valid_kinds.map(lambda k: [*k, "bogus"]))
                 if "kinds" in broken else valid_kinds)
    samples = draw(COUNT_MISTAKES if "samples" in broken else st.integers(1, 3))
    window = draw(COUNT_MISTAKES if "window" in broken else st.integers(1, 4))
    noise_std = draw(st.one_of(st.floats(max_value=-1e-9), st.sampled_from([math.nan, math.inf, "1", True, None]))
                     if "noise_std" in broken else
                     st.one_of(st.floats(0, 10), st.integers(0, 3), st.floats(HUGE_NOISE, 1e300)))
    seed = draw(st.sampled_from([2**64, -(2**63) - 1, 1.5, "0", None]) if "seed" in broken
                else st.integers(-(2**63), 2**64 - 1))
    max_rows = draw(COUNT_MISTAKES if "max_rows" in broken else st.integers(1, 40))
    return Call(broken, dict(tokens=tokens, subject=subject, answer=answer, metric=metric, kinds=kinds, samples=samples,
                             window=window, noise_std=noise_std, seed=seed, max_rows=max_rows, fast=draw(st.booleans())))


TRACE_COLUMNS = ["kind", "layer", "pos", "group", "score", "corrupted", "clean", "indirect_effect"]


def trace_call(broken=(), **changes) -> Call:
    """A one-token call with ``changes``, for the pinned examples."""
    call = dict(tokens=torch.tensor([[0]]), subject=(0, 1), answer=0, metric=None, kinds=["resid"], samples=1, window=1,
                noise_std=0.0, seed=0, max_rows=1, fast=False)
    return Call(frozenset(broken), {**call, **changes})


@given(call=tracing_calls())
@example(call=trace_call(noise_std=1.1956896757809777e38))  # a frame of NaN
@example(call=trace_call({"noise_std"}, noise_std=math.nan))  # a frame of NaN
@example(call=trace_call({"noise_std"}, noise_std="1"))  # TypeError: '<' not supported between 'str' and 'int'
@example(call=trace_call({"kinds"}, kinds=[]))  # IndexError: list index out of range
@example(call=trace_call({"subject"}, subject=(0, 1, 2)))  # ValueError: too many values to unpack
@example(call=trace_call({"subject"}, subject=1))  # TypeError: cannot unpack non-iterable int
@example(call=trace_call({"answer"}, answer=11))  # IndexError
@example(call=trace_call({"answer"}, answer=-1))  # read as the last token
@example(call=trace_call({"answer"}, answer=True))  # a boolean index: the metric got [1 1 d_vocab]
@example(call=trace_call({"samples"}, samples=1.5))  # TypeError inside torch.randn
@example(call=trace_call({"window"}, kinds=["mlp"], window=1.5))  # TypeError inside range
@example(call=trace_call({"seed"}, seed=2**64))  # ValueError: Overflow when unpacking long long
@example(call=trace_call({"metric"}, answer=None, metric="a string"))  # TypeError: new(): invalid data type 'str'
@example(call=trace_call({"tokens"}, tokens=torch.tensor([[]], dtype=torch.long)))  # named the subject, not the tokens
def test_tracing_returns_its_documented_frame_or_names_the_argument(two_layers, call):
    from interp.patching import causal_trace

    model = two_layers
    kwargs = dict(call.kwargs, metric=TRACE_METRICS[call.kwargs["metric"]][0] if call.kwargs["metric"] else None)
    try:
        with torch.no_grad():
            df = causal_trace(model, **kwargs)
    except ValueError as e:
        huge = isinstance(kwargs["noise_std"], float) and kwargs["noise_std"] >= HUGE_NOISE
        if huge and "noise_std" in str(e) and "overflows" in str(e):
            event("refused: the noise overflows")
            return
        assert_names_a_broken_argument(e, call, {"tokens": "token"})
        event("refused")
        return
    assert not call.broken, f"accepted a call with broken {sorted(call.broken)}: {call}"
    event("returned")
    n_pos = kwargs["tokens"].shape[-1]
    assert list(df.columns) == TRACE_COLUMNS and len(df) == len(kwargs["kinds"]) * model.cfg.n_layers * n_pos
    numbers = df[TRACE_COLUMNS[4:]].to_numpy()
    assert numbers.dtype == float and bool(torch.isfinite(torch.from_numpy(numbers)).all()), df
    with torch.no_grad():  # the fast engine and the hooked batches agree
        other = causal_trace(model, **dict(kwargs, fast=not kwargs["fast"]))[TRACE_COLUMNS[4:]].to_numpy()
    assert torch.allclose(torch.from_numpy(numbers), torch.from_numpy(other), rtol=1e-4, atol=1e-4), (
        f"the fast engine and the hooked batches differ by {abs(numbers - other).max():.2e}: {call}")
