"""The admin page in a real browser: headless Chromium from Debian driven by selenium, against
pytest-django's live server and the suite's real PostgreSQL server.

Chromium and its driver are installed when missing (devtools.system_packages); under
``CI=true`` a missing browser is a failure, never a skip. ``DBCONNMGR_SCREENSHOTS=1`` saves
the screenshots of docs/dashboard.md into docs/img/.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.utils import timezone
from selenium import webdriver as selenium_webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from devtools.system_packages import MissingPackages, ensure_debian_packages
from tests.conftest import Sessions
from tests.factories import ConnectionSampleFactory

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "img"
PAGE = "/admin/dbconnmgr/connections/default/"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,1500",
)  # fmt: skip


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session, with a new empty profile."""
    try:
        ensure_debian_packages({"chromium": "chromium", "chromedriver": "chromium-driver"})
    except MissingPackages as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(str(exc))
    profile = tempfile.mkdtemp(prefix="dbconnmgr-chromium-")
    options = selenium_webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    service = selenium_webdriver.ChromeService(
        executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver"
    )
    driver = selenium_webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    driver.implicitly_wait(10)  # elements of a page still loading after a click
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def app_dsn(make_role: Any) -> str:
    dsn: str = make_role("t_browser_app")
    return dsn


def log_in(browser: Any, live_server: Any, username: str) -> None:
    browser.delete_all_cookies()
    browser.get(live_server.url + "/admin/login/")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys("pw")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # logged in (left the login page) or refused (the login page with its error)
    until(browser, "!location.pathname.startsWith('/admin/login/') "
                   "|| document.querySelector('.errornote') !== null")  # fmt: skip


def until(browser: Any, script: str) -> None:
    """Wait until the JavaScript expression ``script`` is true on the current page.

    While a click navigates, chromedriver may answer with a generic error about a node of
    the old document instead of a stale element: such errors mean "not yet".
    """
    WebDriverWait(browser, 20, ignored_exceptions=(WebDriverException,)).until(
        lambda b: b.execute_script(f"return document.readyState === 'complete' && ({script})")
    )


def make_staff(django_user_model: Any, name: str, *perms: str, staff: bool = True) -> None:
    user = django_user_model.objects.create_user(name, password="pw", is_staff=staff)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))


def shot(browser: Any, name: str) -> None:
    if os.environ.get("DBCONNMGR_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / name))


def alive(dsn: str, pid: int) -> bool:
    with psycopg.connect(dsn, autocommit=True) as admin:
        row = admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return row is not None


def test_staff_sees_the_page_with_charts_and_non_staff_is_refused(
    browser: Any, live_server: Any, django_user_model: Any, sessions: Sessions, app_dsn: str
) -> None:
    for _ in range(3):
        sessions.open("web", dsn=app_dsn)
    sessions.open("worker", "idle in transaction", dsn=app_dsn)
    now = timezone.now().replace(second=0, microsecond=0)
    for minute in range(0, 40):  # one sample a minute for the last 40 minutes
        ConnectionSampleFactory.create(
            taken_at=now - dt.timedelta(minutes=minute, seconds=-1),
            total_connections=20 + (minute * 7) % 30,
        )
    cache.clear()
    make_staff(django_user_model, "alice", "view_connections", "view_query_text",
               "terminate_connections")  # fmt: skip
    log_in(browser, live_server, "alice")
    browser.get(live_server.url + "/admin/")
    browser.find_element(By.CSS_SELECTOR, 'a[href="/admin/dbconnmgr/connections/"]').click()
    assert browser.current_url.endswith(PAGE)
    assert browser.find_element(By.CSS_SELECTOR, ".dbc-bar .fill").size["width"] > 0
    assert "By application" in browser.page_source
    shot(browser, "dashboard.png")

    browser.get(live_server.url + PAGE + "?period=hour")
    points = browser.find_elements(By.CSS_SELECTOR, "svg.dbconnmgr-chart circle.point")
    assert len(points) == 40
    cells = browser.find_elements(By.CSS_SELECTOR, "svg.dbconnmgr-heatmap g.cell")
    assert 1 <= len(cells) <= 2  # 40 minutes touch one or two hours
    browser.execute_script("document.getElementById('dbc-history').scrollIntoView()")
    shot(browser, "dashboard-history.png")

    make_staff(django_user_model, "bob", "view_connections", staff=False)
    log_in(browser, live_server, "bob")
    browser.get(live_server.url + PAGE)
    assert "/admin/login/" in browser.current_url
    assert "dbc-bar" not in browser.page_source


def test_terminate_from_the_page_ends_the_session(
    browser: Any, live_server: Any, django_user_model: Any, sessions: Sessions, app_dsn: str,
    dsn: str,
) -> None:  # fmt: skip
    victim = sessions.open("t-browser-victim", dsn=app_dsn)
    bystander = sessions.open("t-browser-victim", dsn=app_dsn)
    make_staff(django_user_model, "carol", "view_connections", "terminate_connections")
    log_in(browser, live_server, "carol")
    browser.get(live_server.url + PAGE + "?application=t-browser-victim")
    browser.find_element(By.CSS_SELECTOR, f'input[name=pid][value="{victim.pid}"]').click()
    browser.find_element(By.CSS_SELECTOR, "button[value=terminate]").click()
    until(browser, "document.getElementById('dbc-summary') !== null")
    assert "Plan:" in browser.find_element(By.ID, "dbc-summary").text
    shot(browser, "dashboard-confirm.png")
    assert alive(dsn, victim.pid)  # nothing before the confirmation
    browser.find_element(By.ID, "dbc-confirm").click()
    until(browser, "(document.getElementById('dbc-summary') || {}).innerText?.startsWith('Done')")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-pid="{victim.pid}"]')
    assert row.get_attribute("data-outcome") == "terminated"
    shot(browser, "dashboard-result.png")
    assert not alive(dsn, victim.pid)
    assert alive(dsn, bystander.pid)


def test_live_part_refreshes_without_reloading_the_page(
    browser: Any, live_server: Any, django_user_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dbconnmgr.admin

    monkeypatch.setattr(dbconnmgr.admin, "REFRESH_SECONDS", 1)
    make_staff(django_user_model, "dave", "view_connections")
    log_in(browser, live_server, "dave")
    browser.get(live_server.url + PAGE)
    first = browser.find_element(By.CSS_SELECTOR, ".dbc-live-part").get_attribute("data-taken-at")
    browser.execute_script("window.dbcMarker = 'still the same page';")
    WebDriverWait(browser, 20).until(
        lambda b: (
            b.find_element(By.CSS_SELECTOR, ".dbc-live-part").get_attribute("data-taken-at")
            != first
        )
    )
    assert browser.execute_script("return window.dbcMarker") == "still the same page"
    assert re.search(r"\d{4}-\d\d-\d\dT", first or "")


def test_the_connection_list_fits_a_1400_pixel_window(
    browser: Any, live_server: Any, django_user_model: Any, sessions: Sessions, app_dsn: str
) -> None:
    """Every column, query text included, without a horizontal scroll bar at 1400 px; the
    age columns say their unit."""
    for name in ("shop-web-frontend-eu-west-1a-canary", "celery-worker-high-priority-queue"):
        sessions.open(name, "active", dsn=app_dsn)
    sessions.open("nightly-report", "idle in transaction", dsn=app_dsn)
    make_staff(django_user_model, "erin", "view_connections", "view_query_text",
               "terminate_connections")  # fmt: skip
    log_in(browser, live_server, "erin")
    browser.get(live_server.url + PAGE)
    widths = browser.execute_script(
        "const t = document.getElementById('dbc-connection-list');"
        "return [window.innerWidth, document.documentElement.scrollWidth,"
        " Math.ceil(t.getBoundingClientRect().right), t.parentElement.scrollWidth,"
        " t.parentElement.clientWidth];"
    )
    inner, scroll, right, box_scroll, box_width = widths
    if path := os.environ.get("DBCONNMGR_SHOT_1400"):  # to look at it
        browser.save_screenshot(path)
    assert inner <= 1400
    assert scroll <= inner, f"the page scrolls sideways: {widths}"
    assert right <= inner, f"the table overflows the window: {widths}"
    assert box_scroll <= box_width, f"the table scrolls inside its box: {widths}"
    headers = [
        h.text.lower() for h in browser.find_elements(By.CSS_SELECTOR, "#dbc-connection-list th")
    ]
    assert "in state (s)" in headers and "transaction (s)" in headers
