"""The explorer page in a real browser: headless Chromium driven by Selenium.

The page written by `evsim explore` from a bundled model is opened from a
file:// URL with no network; it must load without console errors, draw its
Plotly figure, and redraw when the time slider is clicked or another image is
chosen in the dropdown. Skips where no Chromium or chromedriver is installed.
"""

import base64
import os
import shutil
import time

import pytest

import evsim
from evsim.cli import main
from evsim.data import load_bundled_sample
from evsim.models import load_model

pytest.importorskip("plotly")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra")

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None or not os.path.exists(CHROMEDRIVER):
    pytest.skip("no Chromium/chromedriver: apt-get install chromium chromium-driver",
                allow_module_level=True)

#: The figure's div and its drawn state: what each panel shows now.
_STATE = """
var g = document.querySelector('.js-plotly-plot');
return {title: g.layout.title.text, sliders: g.layout.sliders.map(s => s.visible),
        active: g.layout.sliders.map(s => s.active), types: g._fullData.map(d => d.type),
        sops_steps: g._fullData[2].x.length, readout: Array.from(g._fullData[1].y),
        raster_spikes: g._fullData[3].x.length};
"""


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore_browser")
    evsim.save(evsim.convert(load_model(), load_bundled_sample("train")[0][:32]),
               root / "snn.npz")
    assert main(["explore", str(root / "snn.npz"), "bundled", "-o", str(root / "page.html"),
                 "--images", "3", "--T", "16", "--neurons", "4"]) == 0
    return root / "page.html"


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1200,1600"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except Exception as err:  # noqa: BLE001 -- an unusable browser is a skip, not a failure
        pytest.skip(f"Chromium did not start ({type(err).__name__}: {err}); apt-get install "
                    "chromium chromium-driver")
    yield driver
    driver.quit()


def _click(browser, element) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).move_to_element(element).click().perform()
    time.sleep(0.3)  # Plotly redraws on the next animation frame


def _screenshot(browser) -> bytes:
    return base64.b64decode(browser.get_screenshot_as_base64())


def test_the_page_loads_offline_without_errors(browser, page):
    browser.get(page.as_uri())
    assert browser.find_elements("css selector", ".js-plotly-plot")
    assert browser.find_elements("css selector", ".slider-rail-touch-rect")
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
    state = browser.execute_script(_STATE)
    assert state["sliders"] == [True, False, False] and state["sops_steps"] == 16


def test_the_time_slider_redraws_the_panels(browser, page):
    browser.get(page.as_uri())
    before, shot_before = browser.execute_script(_STATE), _screenshot(browser)
    ticks = browser.find_elements("css selector", ".slider-tick-rect")
    assert len(ticks) == 16
    _click(browser, ticks[3])  # step 4
    after, shot_after = browser.execute_script(_STATE), _screenshot(browser)
    assert after["active"][0] == 3 and after["sops_steps"] == 4
    assert after["types"] == before["types"] and after["types"][:3] == ["heatmap", "bar",
                                                                        "scatter"]
    assert after["raster_spikes"] <= before["raster_spikes"]
    assert after["readout"] != before["readout"]
    assert shot_after[:8] == b"\x89PNG\r\n\x1a\n" and shot_after != shot_before
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_the_dropdown_chooses_another_image(browser, page):
    browser.get(page.as_uri())
    before, shot_before = browser.execute_script(_STATE), _screenshot(browser)
    _click(browser, browser.find_element("css selector", ".updatemenu-header"))
    buttons = browser.find_elements("css selector", ".updatemenu-dropdown-button")
    assert len(buttons) == 3
    _click(browser, buttons[2])
    after = browser.execute_script(_STATE)
    assert after["title"].startswith("evsim explorer (percentile): image 2")
    assert after["sliders"] == [False, False, True] and after["sops_steps"] == 16
    assert after["types"] == before["types"]
    assert after["readout"] != before["readout"] and _screenshot(browser) != shot_before
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
