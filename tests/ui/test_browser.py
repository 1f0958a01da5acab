"""End to end in headless Chromium (Debian's chromium + chromium-driver, driven by selenium):
the page loads, a run is chosen, a clip is generated, and the clip's source plays in an <audio>
element at the asked duration. The screenshot goes to the test's tmp dir (and, with
UI_SCREENSHOT=PATH, a small palette PNG of it to PATH: docs/ui.png is made so)."""
import os
import shutil
import time

import pytest

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

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


def test_generate_a_clip_in_the_browser(app, runs, browser, tmp_path):
    wait = WebDriverWait(browser, 180)
    browser.get(app.url)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#generate"))
    wait.until(lambda d: " run," in d.find_element(By.ID, "info").text)  # the first form drawn
    choose = browser.find_element(By.CSS_SELECTOR, "#run input")
    choose.click()
    choose.send_keys(Keys.CONTROL, "a")
    choose.send_keys(f"{runs}/digits", Keys.ENTER)
    wait.until(lambda d: "diffwave run" in d.find_element(By.ID, "info").text)
    seconds = browser.find_element(By.CSS_SELECTOR, "#seconds input")
    seconds.send_keys(Keys.CONTROL, "a")
    seconds.send_keys(str(SECONDS), Keys.TAB)
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda d: "Made 1 clip" in d.find_element(By.ID, "status").text)
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
    assert abs(duration["duration"] - SECONDS) < 0.01, duration
    time.sleep(1)                                     # let the waveform and figures draw
    shot = tmp_path / "ui.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("UI_SCREENSHOT"):               # the README's picture: 64 colours
        from PIL import Image
        image = Image.open(shot).convert("RGB")
        image = image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.LANCZOS)
        image.quantize(64).save(os.environ["UI_SCREENSHOT"], optimize=True)
