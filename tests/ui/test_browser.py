"""End to end in headless Chromium (Debian's chromium + chromium-driver, driven by selenium):
the page loads, a run is chosen, a clip is generated, and the clip's source plays in an <audio>
element at the asked duration; then the same with a bundled model (app.py's default
directories). Screenshots go to each test's tmp dir (and, with UI_SCREENSHOT=PATH, a small
palette PNG of the bundled model's to PATH: docs/ui.png is made so)."""
import os
import shutil
import time
from pathlib import Path

import pytest

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SECONDS = 0.75


@pytest.fixture
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("chromium and chromium-driver are not installed (make ui-test installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,1000", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))
    yield driver
    driver.quit()


def choose(browser, wait, key, info):
    """Types `key` into the run box and waits for the form to show `info`."""
    box = browser.find_element(By.CSS_SELECTOR, "#run input")
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(key, Keys.ENTER)
    wait.until(lambda d: info in d.find_element(By.ID, "info").text)


def fill(browser, elem_id, value):
    box = browser.find_element(By.CSS_SELECTOR, f"#{elem_id} input")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value), Keys.TAB)


def generate_and_check_the_player(browser, wait, app, seconds):
    """Generate, then the clip's source plays in Chromium at the asked length."""
    browser.find_element(By.ID, "generate").click()
    status = wait.until(lambda d: (lambda t: t if "Made" in t or "Error" in t else None)(
        d.find_element(By.ID, "status").text))
    assert "Made 1 clip" in status, status
    # Gradio 6 draws the clip with a waveform player whose <audio> gets its data by script; the
    # clip's source is the player's download link: Chromium must play it, at the asked length.
    link = wait.until(lambda d: [a for a in d.find_elements(By.CSS_SELECTOR,
                                                            "#clip1 a.download-link")
                                 if (a.get_attribute("href") or "").endswith(".wav")])[0]
    source = link.get_attribute("href")
    assert source.startswith(app.url)
    duration = browser.execute_async_script("""
        const [source, done] = arguments;
        const audio = document.createElement('audio');
        const report = () => done({duration: audio.duration, error: audio.error && audio.error.code,
                                   state: audio.readyState});
        audio.addEventListener('loadedmetadata', report);
        audio.addEventListener('error', report);
        audio.preload = 'metadata';
        audio.src = source;
        document.body.appendChild(audio);
    """, source)
    assert duration["error"] is None and duration["state"] >= 1, duration
    assert abs(duration["duration"] - seconds) < 0.01, duration
    time.sleep(1)                                     # let the waveform and figures draw


def test_generate_a_clip_in_the_browser(app, runs, browser, tmp_path):
    wait = WebDriverWait(browser, 180)
    browser.get(app.url)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#generate"))
    wait.until(lambda d: " run," in d.find_element(By.ID, "info").text)  # the first form drawn
    choose(browser, wait, f"{runs}/digits", "diffwave run")
    fill(browser, "seconds", SECONDS)
    generate_and_check_the_player(browser, wait, app, SECONDS)
    shot = tmp_path / "ui.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


@pytest.mark.skipif(not (ROOT / "pretrained" / "digits" / "params.json").exists(),
                    reason="pretrained/digits is not in this checkout")
def test_a_bundled_model_in_the_browser(serving, browser, tmp_path):
    """app.py with no --runs lists pretrained/ (and runs/): the bundled class-conditional
    mel-UNet says a 7, drawn in its labelled figure. The screenshot is docs/ui.png's source."""
    with serving([], tmp_path / "app.log") as app:
        wait = WebDriverWait(browser, 300)
        browser.get(app.url)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#generate"))
        choose(browser, wait, "pretrained/digits", "labels 0..9")
        fill(browser, "label", 7)
        fill(browser, "seconds", 1)
        generate_and_check_the_player(browser, wait, app, 1.0)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#spectrograms img"))
        browser.set_window_size(1280, 1300)           # the form and the labelled figure
        browser.execute_script("window.scrollTo(0, 0)")
        time.sleep(1)
        shot = tmp_path / "ui.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("UI_SCREENSHOT"):               # the README's picture: 64 colours
        from PIL import Image
        image = Image.open(shot).convert("RGB")
        image = image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.LANCZOS)
        image.quantize(64).save(os.environ["UI_SCREENSHOT"], optimize=True)
