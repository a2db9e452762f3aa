"""`p2p-real ui --model shapes` driven in headless Chromium, as a person would use it: upload a
scene, type its caption, invert, type a colour swap, edit; then a bad word. The page must show the
edit that was saved, in OUTPUT as the command line saves it, and say the bad word in one line.

Needs gradio (the ui extra), selenium, chromium and chromedriver (Debian: apt-get install chromium
chromium-driver); skipped, saying which is missing, without them, unless P2P_REAL_BROWSER_TEST=required
(as .ci/run sets it, so that CI never passes by skipping it). Set P2P_REAL_UI_SCREENSHOT=docs/ui.png to
keep the screenshot taken after the edit (the README's).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
SHAPES = REPO / "data" / "shapes"
SCENE = "circle.png"
WINDOW = (1400, 1200)  # the screenshot's size: the whole page, readable
START_SECONDS = 180  # importing torch, diffusers and gradio on a busy 2-core machine
INVERT_SECONDS = 180
EDIT_SECONDS = 90


def missing(what: str) -> None:
    if os.environ.get("P2P_REAL_BROWSER_TEST") == "required":
        pytest.fail(f"the browser test is required here, but {what}")
    pytest.skip(what)


def requirement(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        missing(f"{name} is not installed (Debian: apt-get install -y chromium chromium-driver)")
    return found


@pytest.fixture(scope="module")
def browser():
    if find_spec("gradio") is None:
        missing("the ui extra is not installed: pip install -e '.[dev,ui]'")
    if find_spec("selenium") is None:
        missing("selenium is not installed: pip install selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = requirement("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(argument)  # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
    driver = webdriver.Chrome(service=Service(requirement("chromedriver")), options=options)
    # The page's own size, not the window's, which loses some to the browser's frame.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": WINDOW[0], "height": WINDOW[1],
                                                                  "deviceScaleFactor": 1, "mobile": False})
    yield driver
    driver.quit()


@pytest.fixture
def app(tmp_path):
    """`p2p-real ui` in its own process on a free port, writing to out/ as the README's command does;
    yields (url, output folder)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "ui.log"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                   "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(log, "w") as log_file:
        server = subprocess.Popen([sys.executable, "-m", "p2p_real", "ui", "--model", "shapes", "--output", "out/",
                                   "--port", str(port), str(SHAPES)], stdout=log_file, stderr=subprocess.STDOUT,
                                  env=environment, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_server(server, url, log)
        yield url, tmp_path / "out"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def wait_for_server(server: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"p2p-real ui exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"p2p-real ui did not answer within {START_SECONDS} s:\n{log.read_text()}")


def test_upload_invert_and_edit_in_the_page(browser, app, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    url, output = app
    caption = json.loads((SHAPES / "captions.json").read_text())[SCENE]
    [colour_swap] = [edit["target"] for edit in yaml.safe_load((SHAPES / "edits.yaml").read_text())["edits"]
                     if edit["photo"] == SCENE]

    def shown(selector: str, seconds: float):
        """The first element matching `selector` once it is there."""
        return WebDriverWait(browser, seconds).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, selector))[0]

    def status() -> str:
        return browser.find_element(By.CSS_SELECTOR, "#status").text

    browser.get(url)
    shown("#photo input[type=file]", 60).send_keys(str(SHAPES / SCENE))
    shown("#photo img", 30)  # uploaded: the preview is in
    browser.find_element(By.CSS_SELECTOR, "#caption textarea").send_keys(caption)
    browser.find_element(By.CSS_SELECTOR, "#invert-button").click()
    shown("#reconstruction-image img", INVERT_SECONDS)
    # an upload's folder is its file name and 8 hex digits of its bytes (pasted pictures share names)
    [photo_folder] = [path for path in output.iterdir() if path.name.startswith("circle-")]
    assert status().startswith("inverted in ") and f": out/{photo_folder.name}, reconstruction PSNR" in status()

    target = browser.find_element(By.CSS_SELECTOR, "#target textarea")
    assert target.get_attribute("value") == caption  # the caption, ready to change a word of
    target.send_keys(Keys.CONTROL, "a")
    target.send_keys(colour_swap)
    browser.find_element(By.CSS_SELECTOR, "#edit-button").click()
    edited_image = shown("#edited-image img", EDIT_SECONDS)
    WebDriverWait(browser, 30).until(lambda driver: status().startswith("edited in "))
    shown("#maps-image img", 10)

    [folder] = [path.parent for path in photo_folder.glob("*/edited.json")]
    assert status().endswith(f"(replace): out/{photo_folder.name}/{folder.name}/edited.png")
    assert (photo_folder / "inversion.json").is_file() and (photo_folder / "reconstruction.png").is_file()
    assert json.loads((folder / "edited.json").read_text())["prompt"] == colour_swap
    assert {"edited.png", "grid.png", "maps.png"} <= {path.name for path in folder.iterdir()}
    with urllib.request.urlopen(edited_image.get_attribute("src")) as response:
        assert response.read() == (folder / "edited.png").read_bytes()  # the page shows the edit it saved
    time.sleep(1)  # let the images finish drawing before the picture is taken
    browser.save_screenshot(str(tmp_path / "ui.png"))
    if os.environ.get("P2P_REAL_UI_SCREENSHOT"):
        shutil.copy(tmp_path / "ui.png", os.environ["P2P_REAL_UI_SCREENSHOT"])

    reweights = browser.find_element(By.CSS_SELECTOR, "#reweights textarea")
    reweights.send_keys("purple=2")
    browser.find_element(By.CSS_SELECTOR, "#edit-button").click()
    WebDriverWait(browser, EDIT_SECONDS).until(lambda driver: status().startswith("Not done:"))
    assert status() == f"Not done: the word 'purple' is not in the prompt '{colour_swap}'"
    assert "Traceback" not in browser.page_source
