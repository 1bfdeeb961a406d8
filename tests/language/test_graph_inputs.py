"""Issue 21, item 1 (a graph, not only a tree): an entry reads earlier named blocks (``from:``), a user block
takes several inputs (``inputs:``), ``merge`` joins them; every mistake is one located line before building.

The rules: ``from:`` names blocks written earlier with ``name:`` (the latest of that name; the model input by
its name), in the same list or the lists around it (a repeat or sequence is written in its place), never
inside a user block, branch or residual nor out of one; a block that takes n inputs and names none reads the
n blocks written before it; a block whose output nothing reads is an error.
"""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import blockbuilder
from blockbuilder import SpecError
from blockbuilder.report.summary import estimate

HEAD = "input: [8, 8, 3]\nclasses: 4\n"
CELL = """blocks:
  cell:
    params: {filters: 4}
    inputs: [x, p]
    body:
      - conv: {filters: $filters, kernel: 1}
        name: h
      - {conv: {filters: $filters, kernel: 1}, from: p, name: q}
      - {merge: add, from: [h, q]}
"""


def inbound(model, layer: str) -> list[str]:
    """The names of the layers whose outputs a Keras layer reads."""
    node = model.get_layer(layer)._inbound_nodes[0]
    return [tensor._keras_history.operation.name for tensor in node.input_tensors]


def error_of(write, text: str) -> str:
    path = write(text)
    with pytest.raises(SpecError) as caught:
        blockbuilder.load(path)
    return str(caught.value).replace(str(path), "arch.yaml")


def test_from_and_merge_make_a_skip_connection(write):
    arch = blockbuilder.load(write(HEAD + """network:
  - conv: {filters: 4}
    name: down
  - {conv: 4, name: mid}
  - {conv: 4, from: down, name: side}
  - {merge: concat, from: [mid, side, input]}
  - global_avg_pool
  - dense: $classes
"""))
    model = blockbuilder.build(arch)
    assert inbound(model, "merge1") == ["mid", "side", "input"]
    assert inbound(model, "side") == ["down"]
    assert arch.root.group("body")[3].output_shape == (8, 8, 11)
    assert estimate(arch)[0] == model.count_params()
    # The longest path: down, mid (or side), dense: 3, not 4 as if the blocks ran one after another.
    assert arch.depth == blockbuilder.summarize(arch, model).depth == 3


def test_a_block_with_two_inputs_reads_the_two_blocks_before_it(write):
    arch = blockbuilder.load(write(HEAD + CELL + """network:
  - {conv: 4, name: stem}
  - conv: 4
  - {cell: {}, name: first}    # reads conv1 (x) and stem (p)
  - {cell: {filters: 6}, from: [first, stem], name: last}
  - global_avg_pool
  - dense: $classes
"""))
    model = blockbuilder.build(arch)
    assert inbound(model, "first.h") == ["conv1"] and inbound(model, "first.q") == ["stem"]
    assert inbound(model, "last.h") == ["first.merge1"] and inbound(model, "last.q") == ["stem"]
    assert estimate(arch)[0] == model.count_params()
    assert arch.depth == 5  # stem, conv1, first.h, last.h, dense


def test_names_in_a_repeat_are_the_latest_and_stay_visible_after_it(write):
    arch = blockbuilder.load(write(HEAD + """network:
  - repeat: 3
    body:
      - {conv: 4, name: a}
      - {conv: {filters: 4, kernel: 1}, name: b}
      - {merge: add, from: [a, b], name: c}
  - {merge: concat, from: [c, a, input]}      # the last unit's c and a
  - global_avg_pool
  - dense: $classes
"""))
    model = blockbuilder.build(arch)
    assert inbound(model, "repeat1.unit2.c") == ["repeat1.unit2.a", "repeat1.unit2.b"]
    assert inbound(model, "merge1") == ["repeat1.unit3.c", "repeat1.unit3.a", "input"]
    assert estimate(arch)[0] == model.count_params()


def test_a_user_block_sees_the_shape_of_its_input(write):
    arch = blockbuilder.load(write(HEAD + """blocks:
  pad_to_even:
    body:
      - zero_pad: {padding: [[0, "${in_shape[0] % 2}"], [0, "${in_shape[1] % 2}"]]}
network:
  - conv: {filters: 4, kernel: 2, padding: valid}
  - pad_to_even
"""))
    assert arch.output_shape == (8, 8, 4)


def test_a_merge_of_one_input_passes_it_on(write):
    arch = blockbuilder.load(write(HEAD + "network:\n  - conv: 4\n  - merge: add\n"))
    assert arch.output_shape == (8, 8, 4)


def test_summary_and_diagram_name_what_a_block_reads(write, cli, tmp_path):
    path = write(HEAD + CELL + "network:\n  - {conv: 4, name: stem}\n  - conv: 4\n  - cell\n")
    arch = blockbuilder.load(path)
    cell = blockbuilder.summarize(arch, blockbuilder.build(arch)).blocks[2]
    # p is the block the cell was given: stem
    assert [b.description for b in cell.children] == ["conv 1×1, 4", "conv 1×1, 4 ← stem", "merge: add ← h, q"]
    code, out, err = cli("summary", path)
    assert code == 0 and err == ""
    code, out, err = cli("draw", path, "-o", tmp_path / "graph.svg")
    assert code == 0 and err == ""


ERRORS = {
    "an unknown name": (HEAD + "network:\n  - conv: 4\n    name: stem\n  - {merge: add, from: [stem, stm]}\n",
                        "arch.yaml:6:31: network[1].from: no block named 'stm' before this entry (did you mean "
                        "'stem'?)"),
    "an automatic name": (HEAD + "network:\n  - conv: 4\n  - {conv: 4, from: conv1}\n",
                          "arch.yaml:5:21: network[1].from: no block named 'conv1' before this entry: 'from' "
                          "reads a block by the name: written on it"),
    "a later name": (HEAD + "network:\n  - conv: 4\n    name: stem\n  - {merge: add, from: [stem, b]}\n"
                     "  - {conv: 4, name: b}\n",
                     "arch.yaml:6:31: network[1].from: block 'b' comes after this entry: 'from' reads blocks "
                     "written before it"),
    "a name outside a user block": (
        HEAD + CELL.replace("from: p, name: q", "from: stem, name: q") + "network:\n  - conv: 4\n"
        "    name: stem\n  - cell\n",
        "arch.yaml:10:54: blocks.cell.body[1].from: block 'stem' is outside block 'cell', whose body reads only "
        "its inputs (x, p) and its own blocks (in block 'cell' used at arch.yaml:15:5)"),
    "a name outside a branch path": (
        HEAD + "network:\n  - conv: 4\n    name: stem\n  - branch: {paths: [[conv: 4], [{conv: 4, from: stem}]]}\n",
        "arch.yaml:6:50: network[1].branch.paths[1][0].from: block 'stem' is outside the paths of branch "
        "'branch1', which read only their own blocks (a combinator wires its parts itself)"),
    "a name inside a user block": (
        HEAD + CELL + "network:\n  - conv: 4\n    name: stem\n  - cell\n  - {merge: add, from: [h]}\n",
        "arch.yaml:16:25: network[2].from: block 'h' is inside another block (cell1.h): 'from' reads blocks "
        "of this list and of the lists around it"),
    "two inputs to a conv": (HEAD + "network:\n  - conv: 4\n    name: a\n  - {conv: 4, from: [a, input]}\n",
                             "arch.yaml:6:22: network[1].from: 'conv' takes one input, got 2 in 'from'"),
    "two inputs to a branch": (
        HEAD + "network:\n  - {conv: 4, name: a}\n  - {branch: {paths: [[identity], [identity]]}, from: [a, input]}\n",
        "arch.yaml:5:56: network[1].from: 'branch' takes one input, got 2 in 'from'"),
    "one input to a cell": (HEAD + CELL + "network:\n  - conv: 4\n    name: a\n  - {cell: {}, from: [a]}\n",
                            "arch.yaml:15:23: network[1].from: block 'cell' takes 2 inputs (x, p), got 1 in 'from'"),
    "a cell with one block before it": (
        HEAD + CELL + "network:\n  - cell\n",
        "arch.yaml:13:5: network[0]: block 'cell' takes 2 inputs (x, p), but 1 block comes before it here: "
        "name them in 'from'"),
    "a number for a name": (HEAD + "network:\n  - {conv: 4, from: 3}\n",
                            "arch.yaml:4:21: network[0].from: 'from' names blocks by the name: written on them, got 3"),
    "no names": (HEAD + "network:\n  - {conv: 4, from: []}\n",
                 "arch.yaml:4:21: network[0].from: 'from' names an earlier block or a list of 1 to 64 of them, "
                 "got []"),
    "shapes that do not add": (
        HEAD + "network:\n  - {conv: 4, name: a}\n  - {max_pool: 2, name: b}\n  - {merge: add, from: [a, b]}\n",
        "arch.yaml:6:5: network[2]: cannot add a [8, 8, 4] and b [4, 4, 4]: shapes differ"),
    "sizes that do not concatenate": (
        HEAD + "network:\n  - {conv: 4, name: a}\n  - {max_pool: 2, name: b}\n  - {merge: concat, from: [a, b]}\n",
        "arch.yaml:6:5: network[2]: cannot concat a [8, 8, 4] with b [4, 4, 4]: spatial sizes differ"),
    "a block nothing reads": (
        HEAD + "network:\n  - {conv: 4, name: a}\n  - conv: 4\n  - {merge: concat, from: [a, input]}\n",
        "arch.yaml:5:5: network[1]: block 'conv1' is never read: the entry after it reads a, input (its 'from'), "
        "and no 'from' names it"),
    "an input named twice": (HEAD + CELL.replace("inputs: [x, p]", "inputs: [x, x]") + "network:\n  - cell\n",
                             "arch.yaml:6:13: blocks.cell.inputs: input 'x' is named twice"),
    "inputs that are not names": (
        HEAD + CELL.replace("inputs: [x, p]", "inputs: 3") + "network:\n  - cell\n",
        "arch.yaml:6:13: blocks.cell.inputs: 'inputs' names the block's inputs (letters, digits, '_' and '-'; "
        "1 to 64 of them), got 3"),
    "a misspelled merge": (HEAD + "network:\n  - {merge: ad}\n",
                           "arch.yaml:4:13: network[0].merge.by: expected one of 'add', 'concat', 'mean' or "
                           "'multiply', got 'ad' (did you mean 'add'?)"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_every_mistake_is_one_located_line(write, case):
    text, expected = ERRORS[case]
    assert error_of(write, text) == expected


def test_the_cli_says_it_in_one_line_before_building(write, cli):
    text, expected = ERRORS["a later name"]
    code, out, err = cli("validate", write(text))
    assert (code, out) == (1, "") and err.count("\n") == 1 and "Traceback" not in err
    assert err.strip().endswith(expected.split(": ", 1)[1])


# -- generated graphs ------------------------------------------------------------------------------

NAMES = st.sampled_from(["earlier", "earlier", "input", "later", "nope"])


@st.composite
def graphs(draw):
    """A network of named convs, pools and merges, each maybe reading named blocks (some wrongly)."""
    entries = []
    count = draw(st.integers(2, 6))
    for index in range(count):
        kind = draw(st.sampled_from(["conv", "pool", "add", "concat"]))
        reads = draw(st.lists(NAMES, min_size=1, max_size=3)) if kind in ("add", "concat") else \
            draw(st.one_of(st.just([]), st.lists(NAMES, min_size=1, max_size=1)))
        picked = []
        for what in reads:
            if what == "earlier" and index:
                picked.append(f"n{draw(st.integers(0, index - 1))}")
            elif what == "later" and index < count - 1:
                picked.append(f"n{draw(st.integers(index + 1, count - 1))}")
            else:
                picked.append("input" if what != "nope" else "nope")
        entries.append((kind, draw(st.sampled_from([2, 3])), picked))
    return entries


def predicted(entries):
    """The output shape, or (entry index, words of the error), by the rules of the docstring."""
    shapes = {"input": (8, 8, 3)}
    shape = shapes["input"]
    for index, (kind, width, reads) in enumerate(entries):
        for name in reads:
            if name not in shapes:
                return index, "no block named 'nope'" if name == "nope" else "comes after this entry"
        ins = [shapes[name] for name in reads] or [shape]
        if kind == "conv":
            shape = (*ins[0][:2], width)
        elif kind == "pool":
            if ins[0][0] < 2:
                return index, "the spatial size shrinks to zero"
            shape = (ins[0][0] // 2, ins[0][1] // 2, ins[0][2])
        elif kind == "add":
            if any(s != ins[0] for s in ins):
                return index, "shapes differ"
            shape = ins[0]
        else:
            if any(s[:2] != ins[0][:2] for s in ins):
                return index, "spatial sizes differ"
            shape = (*ins[0][:2], sum(s[2] for s in ins))
        shapes[f"n{index}"] = shape
    read = {name for _, _, reads in entries for name in reads}
    for index in range(len(entries) - 1):
        if entries[index + 1][2] and f"n{index}" not in read:
            return index, f"block 'n{index}' is never read"
    return shape


def written(entries) -> str:
    network = []
    for index, (kind, width, reads) in enumerate(entries):
        block = {"conv": {"conv": {"filters": width, "kernel": 1}}, "pool": {"max_pool": 2},
                 "add": {"merge": "add"}, "concat": {"merge": "concat"}}[kind]
        network.append({**block, "name": f"n{index}", **({"from": reads} if reads else {})})
    return yaml.safe_dump({"input": [8, 8, 3], "network": network}, sort_keys=False)


@settings(max_examples=25, deadline=None)
@given(entries=graphs())
def test_a_generated_graph_builds_with_the_predicted_shapes_or_fails_at_one_entry(entries):
    expected = predicted(entries)
    text = written(entries)
    if isinstance(expected[1], str):
        index, words = expected
        with pytest.raises(SpecError) as caught:
            blockbuilder.loads(text, filename="graph.yaml")
        message = str(caught.value)
        assert message.startswith("graph.yaml:") and f"network[{index}]" in message and words in message, text
        assert "\n" not in message
        return
    arch = blockbuilder.loads(text, filename="graph.yaml")
    assert arch.output_shape == expected, text
    model = blockbuilder.build(arch)
    assert tuple(model.output.shape[1:]) == expected, text
    assert estimate(arch)[0] == model.count_params()
    for index, (kind, _, reads) in enumerate(entries):
        if reads and not (kind in ("add", "concat") and len(reads) == 1):
            assert inbound(model, f"n{index}") == reads, text


def test_the_readme_examples_of_graph_inputs_validate(write):
    from conftest import REPO

    readme = (REPO / "README.md").read_text()
    section = readme.split("### Graph inputs", 1)[1].split("\n### ", 1)[0]
    examples = [part.split("```", 1)[0] for part in section.split("```yaml\n")[1:]]
    assert len(examples) == 3
    for example in (e for e in examples if not e.startswith("input:")):
        assert blockbuilder.load(write("input: [8, 8, 3]\n" + example)).output_shape[:2] == (8, 8)
    unet = blockbuilder.load(write(next(e for e in examples if e.startswith("input:")), "unet.yaml"))
    model = blockbuilder.build(unet)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert (shapes["up1"], shapes["merge1"], shapes["merge2"]) == ((16, 16, 64), (16, 16, 96), (32, 32, 48))
    assert unet.output_shape == (4,) and estimate(unet)[0] == model.count_params() == 58_260
