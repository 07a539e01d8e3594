"""The desk's Reports view in a real browser (Chromium via Playwright) against the gateway with the
desk (no Rasa needed) on the demo web shop, whose four weeks of feedback make the view alive: a
supervisor opens it, sees the figures the API computes, a chart drawn by the vendored Chart.js,
filters, searches the comments, downloads a CSV, switches language; an agent never sees it. The
screenshot is docs/reports.png."""

from __future__ import annotations

import csv
import io
import os
import secrets

import pytest
from playwright.async_api import expect

from bot.shared.settings import PROJECT_ROOT
from tests.support.desk_api import PASSWORD, start
from tests.support.desk_helpers import CHROMIUM, DeskAgent, login
from tests.support.stack import delete_prefix, demo_shop_db

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Debian's Chromium at {CHROMIUM} (make browser)")
expect.set_options(timeout=20_000)

SCREENSHOT = PROJECT_ROOT / "docs" / "reports.png"


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory) -> str:
    return demo_shop_db(tmp_path_factory.mktemp("reportsdb"))


@pytest.fixture(scope="module")
async def desk(shop_db, redis_url):
    from bot.desk.auth import Agents
    from bot.gateway.keys import RECORDS

    before = os.environ.get("DATABASE_URL")
    prefix = "rb" + secrets.token_hex(4)
    server = await start(shop_db, redis_url, prefix)

    async def agent(role: str, name: str, ui: str = "nl") -> DeskAgent:
        username = f"{role.replace('_', '')}{secrets.token_hex(3)}"
        await Agents(server.app[RECORDS]).create(username=username, name=name, role=role, skills=("general",),
                                                 languages=("nl", "en"), ui_language=ui, password=PASSWORD)
        return DeskAgent(username, name, role, PASSWORD, ui)

    yield str(server.make_url("")).rstrip("/"), agent
    await server.close()
    if before is None:
        os.environ.pop("DATABASE_URL", None)
    else:
        os.environ["DATABASE_URL"] = before
    delete_prefix(redis_url, prefix)


async def loaded(page, after: int) -> int:
    """Wait until the view has drawn a report newer than number `after`; its number."""
    await page.wait_for_function(
        "n => { const r = document.querySelector('[data-testid=reports]');"
        " return r && !r.dataset.loading && Number(r.dataset.loaded || 0) > n; }", arg=after)
    return int(await page.get_by_test_id("reports").get_attribute("data-loaded"))


CHART_STATE = """testid => {
    const canvas = document.querySelector(`[data-testid=${testid}]`);
    const chart = window.Chart && window.Chart.getChart(canvas);
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
    return chart ? {labels: chart.data.labels, series: chart.data.datasets.map(d => d.label),
                    points: chart.data.datasets.map(d => d.data.filter(v => v !== null).length),
                    width: canvas.width, painted} : null;
}"""


async def test_a_supervisor_reads_filters_charts_and_downloads_the_feedback_report(browser, desk):
    base, agent = desk
    boss = await login(browser, base, await agent("supervisor", "Sofie Supervisor"))
    page = boss.page
    try:
        await page.set_viewport_size({"width": 1440, "height": 1000})
        await expect(boss.by("reports-toggle")).to_have_text("Rapportage")
        await boss.by("reports-toggle").click()
        await expect(boss.by("reports")).to_be_visible()
        n = await loaded(page, 0)
        api = (await boss.api("GET", "/desk/api/reports/feedback"))["data"]
        total = api["total"]
        assert total["answers"] > 40 and total["nps_answers"] > 20 and total["sent"] > total["answered"] > 0
        await expect(boss.by("card-answers-value")).to_have_text(str(total["answers"]))
        await expect(boss.by("card-nps-value")).to_have_text(
            f"{'+' if total['nps'] > 0 else ''}{total['nps']:g}".replace(".", ","))  # Dutch decimal comma
        await expect(boss.by("card-rate-value")).to_have_text(f"{round(100 * total['response_rate'])}%")

        # the charts are drawn: a Chart.js instance with the weeks' points, and paint on the canvas
        trend = await page.evaluate(CHART_STATE, "chart-trend")
        assert trend is not None and trend["series"] == ["NPS", "Respons (%)", "CES gemiddeld"]
        assert trend["labels"] == [w["week"][5:] for w in api["weeks"]] and min(trend["points"]) >= 4
        assert trend["painted"] > 5000, trend
        ces = await page.evaluate(CHART_STATE, "chart-ces")
        assert ces["labels"] == ["1", "2", "3", "4", "5", "6", "7"] and ces["painted"] > 1000
        await expect(boss.by("weeks-row")).to_have_count(len(api["weeks"]))
        await expect(boss.by("churn-row").first).to_contain_text("K10004 Pieter Bakker")
        await expect(boss.by("churn-row").first).to_contain_text("(marieke): Gebeld")
        await expect(boss.by("promises-row")).to_have_count(len(api["promises"]))

        # a filter: only what the bot served
        await boss.by("report-served_by").select_option("bot")
        n = await loaded(page, n)
        bot = (await boss.api("GET", "/desk/api/reports/feedback?served_by=bot"))["data"]["total"]
        assert 0 < bot["answers"] < total["answers"]
        await expect(boss.by("card-answers-value")).to_have_text(str(bot["answers"]))
        await expect(boss.by("served_by-row")).to_have_count(1)
        await expect(boss.by("served_by-row")).to_contain_text("Bot")
        assert (await page.evaluate(CHART_STATE, "chart-trend"))["painted"] > 5000

        # the CSV of a table follows the filter
        async with page.expect_download() as info:
            await boss.by("csv-topic").click()
        download = await info.value
        assert download.suggested_filename.startswith("feedback-topic-")
        rows = list(csv.DictReader(io.StringIO(open(await download.path(), encoding="utf-8").read())))
        assert rows and sum(int(r["answers"]) for r in rows) == bot["answers"]
        assert {"topic", "nps", "ces_average", "response_rate"} <= set(rows[0])

        # search the comments
        await boss.by("report-served_by").select_option("")
        n = await loaded(page, n)
        await boss.by("report-search").fill("lang")
        n = await loaded(page, n)
        comments = boss.by("comments-row")
        assert await comments.count() >= 1
        for text in await comments.all_inner_texts():
            assert "lang" in text.lower()
        await boss.by("report-search").fill("")
        n = await loaded(page, n)

        # English, with the same figures
        await boss.by("lang-switch").select_option("en")
        await expect(boss.by("reports-toggle")).to_have_text("Back to the conversations")
        await expect(boss.by("table-promises")).to_contain_text("Promises and waits per queue")
        trend = await page.evaluate(CHART_STATE, "chart-trend")
        assert trend["series"] == ["NPS", "Response rate (%)", "CES average"] and trend["painted"] > 5000
        await expect(boss.by("card-nps-value")).to_have_text(f"{'+' if total['nps'] > 0 else ''}{total['nps']:g}")
        await page.screenshot(path=str(SCREENSHOT), full_page=True)

        await boss.by("reports-toggle").click()
        await expect(boss.by("reports")).to_be_hidden()
        await expect(page.locator("#h-queue")).to_be_visible()
        boss.assert_clean()
    finally:
        await boss.context.close()


async def test_an_agent_has_no_reports_view(browser, desk):
    base, agent = desk
    anna = await login(browser, base, await agent("agent", "Anna Agent"))
    try:
        await expect(anna.by("reports-toggle")).to_be_hidden()
        assert (await anna.api("GET", "/desk/api/reports/feedback"))["status"] == 403
        anna.assert_clean()
    finally:
        await anna.context.close()


def test_the_page_loads_scripts_from_the_desk_itself_only():
    import re

    static = PROJECT_ROOT / "bot" / "desk" / "static"
    html = (static / "desk.html").read_text()
    sources = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert sources and all(src.startswith("/desk/static/") for src in sources)
    js = (static / "desk.js").read_text()
    [chart] = re.findall(r'const CHART_JS = "([^"]+)"', js)
    assert chart.startswith("/desk/static/vendor/") and (static / chart.removeprefix("/desk/static/")).is_file()
    assert (static / "vendor" / "chart.js" / "LICENSE.md").read_text().startswith("The MIT License")
