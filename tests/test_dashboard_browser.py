"""The operator dashboard in a real headless browser (Debian's chromium via Playwright)
against a real `vtn serve` and ven-sim OSB fleets: what a person signed in as each role
sees. Screenshots of every screen go to the folder printed at the end of the module.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import (
    CHROMIUM_ARGS,
    DERS_PER_VEN,
    Fleet,
    eventually,
    require_browser,
    start_fleet,
    ven_name,
)

SHOTS = Path(os.environ.get("DASHBOARD_SCREENSHOTS") or tempfile.mkdtemp(prefix="vtn-dashboard-"))


@pytest.fixture(scope="module")
def browser_path() -> str:
    return require_browser()


@pytest.fixture(scope="module")
def fleet(browser_path: str, tmp_path_factory: pytest.TempPathFactory,
          request: pytest.FixtureRequest) -> Iterator[Fleet]:
    store_url = None
    if os.environ.get("TEST_STORE", "sqlite") == "mongo":
        store_url = request.getfixturevalue("mongo_server").url()
    yield from start_fleet(tmp_path_factory.mktemp("dash"), store_url)


@pytest.fixture(scope="module")
def browser(browser_path: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=browser_path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
    # past pytest's output capture, so it shows on a passing run too
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print(f"\ndashboard screenshots: {SHOTS}")
    else:
        print(f"\ndashboard screenshots: {SHOTS}")


class Session:
    """One signed-in page; collects console errors and failed requests."""

    def __init__(self, browser: Any, fleet: Fleet, token: str, width: int = 1280,
                 height: int = 800) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.fleet = fleet
        self.page.goto(fleet.url + "/")  # redirects to /ui/
        self.page.fill("#token", token)
        self.page.click("button[type=submit]")
        self.page.wait_for_selector("[data-testid=overview] .cards")

    def go(self, screen: str) -> None:
        self.page.click(f"#nav a[href='#/{screen}']")

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def number(self, testid: str) -> int:
        return int(self.page.inner_text(f"[data-testid={testid}] .n"))

    def table_ids(self, testid: str) -> set[str]:
        rows = self.page.query_selector_all(f"[data-testid={testid}] tbody tr")
        return {r.get_attribute("data-id") or "" for r in rows}

    def close(self) -> None:
        self.context.close()
        assert self.errors == [], f"console errors: {self.errors}"


@pytest.fixture
def session(browser: Any, fleet: Fleet) -> Iterator[Session]:
    s = Session(browser, fleet, fleet.token())
    yield s
    s.close()


def ders_of(fleet: Fleet, token: str | None = None, **filters: str) -> set[str]:
    q = "&".join(f"{k}={v}" for k, v in filters.items())
    page = fleet.api(f"/ders?fields=device_id&limit=1000&{q}", token)
    return {d["device_id"] for d in page["items"]}


def test_overview_counts_equal_the_api(session: Session, fleet: Fleet) -> None:
    stats = fleet.api("/stats")
    vens = fleet.api("/vens")["items"]
    page = session.page
    assert session.number("ders-total") == stats["total"] == 5 * DERS_PER_VEN
    assert session.number("vens-total") == len(vens) == 5
    for cls, n in stats["by_class"].items():
        row = page.locator("[data-testid=by-class] tbody tr", has_text=cls)
        assert row.locator("td").nth(1).inner_text() == str(n)
    assert session.number("registrations") >= 5  # every VEN registered in the last hour
    page.wait_for_selector("[data-testid=live].live:not(.off)")
    session.shot("overview")


def test_search_narrows_the_table_and_opens_a_detail(session: Session, fleet: Fleet) -> None:
    page = session.page
    session.go("ders")
    page.wait_for_selector("[data-testid=der-table] tbody tr")
    assert session.table_ids("der-table") == ders_of(fleet)
    cls = max(fleet.api("/stats")["by_class"].items(), key=lambda kv: kv[1])[0]
    page.select_option("#f-device_class", cls)
    page.click("[data-testid=der-search] button[type=submit]")
    expected = ders_of(fleet, device_class=cls)
    eventually(lambda: session.table_ids("der-table") == expected, 10, "the narrowed table")
    assert f"of {len(expected)} DERs" in page.inner_text("[data-testid=der-count]")
    first = sorted(expected)[0]
    page.focus(f"[data-testid=der-table] tr[data-id='{first}']")
    page.keyboard.press("Enter")  # keyboard reachable: Enter opens the detail
    page.wait_for_selector("[data-testid=der-detail]")
    assert first in page.inner_text("[data-testid=der-detail]")
    page.wait_for_selector("[data-testid=der-log] tbody tr")
    page.wait_for_selector("[data-testid=sparkline] canvas", timeout=15000)  # live refresh
    session.shot("ders")
    page.select_option("#f-device_class", "")
    page.click("[data-testid=der-search] button[type=submit]")


def test_map_shows_every_located_der(session: Session, fleet: Fleet) -> None:
    page = session.page
    session.go("map")
    page.wait_for_selector("[data-testid=map-count][data-points]")
    assert page.get_attribute("[data-testid=map-count]", "data-points") == str(len(ders_of(fleet)))
    assert "no tile server configured" in page.inner_text("[data-testid=map-count]")
    page.wait_for_selector(".leaflet-container")
    session.shot("map")


def test_vens_list_and_reregister_with_confirmation(session: Session, fleet: Fleet) -> None:
    page = session.page
    session.go("vens")
    page.wait_for_selector("[data-testid=ven-table] tbody tr")
    assert session.table_ids("ven-table") == set(fleet.ven_ids.values())
    ven_id = fleet.ven_ids[ven_name("a-osb-", 1)]
    page.click(f"[data-testid=ven-table] tr[data-id='{ven_id}']")
    page.wait_for_selector("[data-testid=ven-detail]")
    page.click("text=Re-register")
    page.wait_for_selector("dialog[open]")
    session.shot("vens-confirm")
    page.click("#confirm-ok")
    page.wait_for_selector("#toast >> text=queued")
    # the VEN polls, gets oadrRequestReregistration and registers again
    eventually(lambda: any(e["kind"] == "ven.reregistered" for e in fleet.api(
        f"/log/recent?ven_id={ven_id}&limit=20")["items"]), 20, "the VEN to re-register")
    session.shot("vens")


def test_event_created_in_the_form_reaches_the_osbs(session: Session, fleet: Fleet) -> None:
    page = session.page
    session.go("events")
    page.wait_for_selector("[data-testid=event-form]")
    ven_id = fleet.ven_ids[ven_name("b-osb-", 1)]
    page.fill("#e-vens", ven_id)
    page.fill("#e-program", "ui-test")
    page.click("[data-testid=event-form] button[type=submit]")
    page.wait_for_selector("[data-testid=deliveries] tbody tr")
    # the OSB got oadrDistributeEvent on its poll and answered with an oadrCreatedEvent
    page.wait_for_selector("[data-testid=deliveries] [data-opt=optIn], "
                           "[data-testid=deliveries] [data-opt=optOut]", timeout=20000)
    events = fleet.api("/events?program=ui-test")["items"]
    assert len(events) == 1 and events[0]["targets"]["ven_ids"] == [ven_id]
    session.shot("events")
    page.select_option("#m-level", "3")  # modify: sent with If-Match, redistributed
    page.click("text=Modify")
    page.wait_for_selector("#toast >> text=Event modified")
    event_id = events[0]["event_id"]
    eventually(lambda: fleet.api(f"/events/{event_id}")["modification_number"] == 1, 10)
    page.click("text=Cancel event")
    page.click("#confirm-ok")
    page.wait_for_selector("[data-testid=event-status] >> text=cancelled")
    assert fleet.api(f"/events/{event_id}")["status"] == "cancelled"


def test_group_from_the_search_is_an_event_target(session: Session, fleet: Fleet) -> None:
    page = session.page
    session.go("ders")
    page.wait_for_selector("[data-testid=der-table] tbody tr")
    page.select_option("#f-device_class", "dhwDevice")
    page.click("[data-testid=der-search] button[type=submit]")
    session.go("groups")
    page.wait_for_selector("[data-testid=group-form]")
    page.fill("#g-name", "boilers")
    page.fill("#g-owner", "agg-a")
    page.click("[data-testid=group-form] button[type=submit]")
    expected = ders_of(fleet, device_class="dhwDevice", aggregator_id="agg-a")
    page.wait_for_selector("[data-testid=group-members]")
    assert page.inner_text("[data-testid=group-members]") == str(len(expected))
    session.shot("groups")
    group = next(g for g in fleet.api("/groups")["items"] if g["name"] == "boilers")
    assert group["filters"] == {"device_class": ["dhwDevice"]}
    session.go("events")
    page.wait_for_selector(f"#e-group option[value='{group['group_id']}']", state="attached")
    page.select_option("#e-group", group["group_id"])
    page.fill("#e-program", "ui-group")
    page.click("[data-testid=event-form] button[type=submit]")
    page.wait_for_selector("[data-testid=deliveries] tbody tr")
    event = fleet.api("/events?program=ui-group")["items"][0]
    assert event["targets"]["groups"] == [group["group_id"]]
    detail = fleet.api(f"/events/{event['event_id']}")
    assert {d for v in detail["deliveries"] for d in v["ders"]} == expected
    session.go("ders")
    page.select_option("#f-device_class", "")
    page.click("[data-testid=der-search] button[type=submit]")


def test_log_screen_streams_live_entries(session: Session, fleet: Fleet) -> None:
    page = session.page
    session.go("log")
    page.wait_for_selector("[data-testid=log-table] tbody tr")
    page.fill("#l-kind", "der.status_changed,ven.liveness,ven.reregistered")
    page.click("text=Filter")
    page.wait_for_selector("[data-testid=live].live:not(.off)")
    session.shot("log")


def test_aggregator_and_prosumer_see_only_their_own(browser: Any, fleet: Fleet) -> None:
    token = fleet.token("aggregator", aggregator_id="agg-b")
    mine = ders_of(fleet, aggregator_id="agg-b")
    assert len(mine) == 2 * DERS_PER_VEN
    s = Session(browser, fleet, token)
    try:
        assert s.number("ders-total") == len(mine)
        assert s.number("vens-total") == 2
        s.go("ders")
        s.page.wait_for_selector("[data-testid=der-table] tbody tr")
        assert s.table_ids("der-table") == mine
        s.go("map")
        s.page.wait_for_selector("[data-testid=map-count][data-points]")
        assert s.page.get_attribute("[data-testid=map-count]", "data-points") == str(len(mine))
        other = sorted(ders_of(fleet, aggregator_id="agg-a"))[0]
        s.page.goto(f"{fleet.url}/ui/#/ders/{other}")  # another tenant's DER by its id
        s.page.wait_for_selector("[data-testid=der-panel] .error")
        assert "no such DER" in s.page.inner_text("[data-testid=der-panel]")
        s.errors = [e for e in s.errors if "404" not in e]  # the API's answer, logged by chromium
        s.go("vens")
        s.page.wait_for_selector("[data-testid=ven-table] tbody tr")
        assert s.table_ids("ven-table") == {fleet.ven_ids[ven_name("b-osb-", i)] for i in (1, 2)}
    finally:
        s.close()
    name = ven_name("b-osb-", 1)
    p = Session(browser, fleet, fleet.token("prosumer", account_id=f"acc-{name}"))
    try:
        assert p.number("ders-total") == DERS_PER_VEN
        p.go("ders")
        p.page.wait_for_selector("[data-testid=der-table] tbody tr")
        assert p.table_ids("der-table") == ders_of(fleet, ven_id=fleet.ven_ids[name])
    finally:
        p.close()


def test_phone_width_has_no_horizontal_scroll(browser: Any, fleet: Fleet) -> None:
    s = Session(browser, fleet, fleet.token(), width=390, height=844)
    try:
        for screen in ("overview", "ders", "vens", "groups", "events", "log"):
            s.go(screen)
            s.page.wait_for_timeout(300)
            overflow = s.page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 1, f"{screen} scrolls sideways by {overflow}px at 390 px"
        s.go("ders")
        s.page.wait_for_selector("[data-testid=der-table] tbody tr")
        s.shot("ders-phone")
    finally:
        s.close()


def test_der_goes_offline_on_the_page_when_its_osb_stops(session: Session, fleet: Fleet) -> None:
    page = session.page
    ven_id = fleet.ven_ids[ven_name("c-osb-", 1)]
    session.go("ders")
    page.fill("#f-ven_id", ven_id)
    page.click("[data-testid=der-search] button[type=submit]")
    eventually(lambda: session.table_ids("der-table") == ders_of(fleet, ven_id=ven_id), 10)
    device = sorted(ders_of(fleet, ven_id=ven_id))[0]
    page.click(f"[data-testid=der-table] tr[data-id='{device}']")
    page.wait_for_selector("[data-testid=der-liveness] [data-liveness=online]")
    fleet.stop_fleet("c-osb-")
    # no reload: the page follows the log stream
    row = f"[data-testid=der-table] tr[data-id='{device}']"
    page.wait_for_selector(f"{row} [data-liveness=offline]", timeout=30000)
    page.wait_for_selector("[data-testid=der-liveness] [data-liveness=offline]", timeout=10000)
    session.shot("der-offline")
    page.fill("#f-ven_id", "")
