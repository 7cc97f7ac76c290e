"""The picture of a flow: a valid PNG of a sensible size, one box per step, one arrow per way on."""

from __future__ import annotations

import subprocess
import sys

from builders import flow
from builders.spec import BotSpec
from studio.flow_picture import MAX_WIDTH_IN, flow_picture, render
from tests.png import png_size


def five_steps() -> BotSpec:
    spec = flow.add_step(BotSpec(name="shop-bot"), "template", "refunds", {"text": "5 days."}).spec
    spec = flow.add_route(spec, {"keyword": "refund"}, "refunds").spec
    spec = flow.add_route(spec, {"regex": r"order \$\d+ $x$"}, ask_bot="orders-bot").spec
    return flow.add_step(spec, "retrieve", "kb", {"top_k": 3}).spec


async def test_a_five_step_flow_is_a_png_with_a_box_per_step() -> None:
    view = flow.outline(five_steps())
    assert len(view.steps) == 5
    picture = await flow_picture(view)  # in a thread
    width, height = png_size(picture.png)
    assert (width, height) == (picture.width, picture.height)
    assert 300 <= width <= 1600 and 200 <= height <= 2000
    assert 10_000 <= len(picture.png) <= 80_000
    assert picture.boxes == 5
    assert picture.arrows == len(view.edges) == 4  # two routes, the default, kb -> llm


def test_a_long_flow_still_fits() -> None:
    spec = BotSpec(name="long-bot")
    for n in range(30):
        spec = flow.add_step(spec, "retrieve", f"step-{n}").spec
    picture = render(flow.outline(spec))
    width, height = png_size(picture.png)
    assert picture.boxes == 31
    assert width <= MAX_WIDTH_IN * 100 and height <= 2000


def test_a_plain_bot_is_one_box() -> None:
    picture = render(flow.outline(BotSpec(name="plain-bot")))
    assert (picture.boxes, picture.arrows) == (1, 0)
    png_size(picture.png)


def test_importing_the_service_does_not_import_matplotlib() -> None:
    code = "import sys, main; assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
