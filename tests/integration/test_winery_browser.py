"""The Winery page in a real browser, against the real serving runtime with the wine model.

What a person does after the workflow has deployed the model: open the page,
paste the prediction URL, move a few measurements, press Predict, read the
score. The expected score is the model's own (``mlflow.pyfunc`` on a DataFrame
of the same values), so the page, its V2 client and the runtime are checked
end to end. A second case points the page at a dead URL and expects a message,
not a traceback. Screenshots go to ``test-artifacts/`` at the repository root.

Needs Debian's ``chromium`` and ``chromium-driver`` (.ci/run installs them);
nothing is downloaded. The image case builds the app's Dockerfile with Debian's
docker and BuildKit (tests/fixtures/images.py), for its ``RUN --mount=type=secret``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.fixtures.images import build_image, docker, remove_image
from tests.fixtures.serving import free_port, running, serve_argv, stop, wait_http_ok
from tests.fixtures.winery import WINERY, dead_url, winery_module

pytestmark = [pytest.mark.browser, pytest.mark.integration]

from selenium import webdriver  # noqa: E402 - a dev dependency: a missing one fails, never skips
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

features = winery_module("features")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Root, headless, on a closed network: no sandbox, no GPU, and no background calls home.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1280,1500",
)  # fmt: skip
WAIT = 30
# The page shows 3 decimals: the displayed number is within half a unit of the model's.
TOLERANCE = 0.0005 + 1e-9
# What the test moves: typed values (within the data set's range, at each field's precision) ...
TYPED = {"alcohol": 12.5, "volatile acidity": 0.35, "residual sugar": 12.4, "chlorides": 0.031}
# ... and fields stepped with their "+" button, how many times.
STEPPED = {"pH": 3, "free sulfur dioxide": 5}


# -- processes ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def infer_url(wine_model_dir: Path) -> Iterator[str]:
    """The serving runtime with the wine model, as the local target starts it."""
    port = free_port()
    with running(serve_argv(str(wine_model_dir), port), f"http://127.0.0.1:{port}"):
        yield f"http://127.0.0.1:{port}/v2/models/wine/infer"


def wait_healthy(url: str, process: subprocess.Popen[str] | None = None, timeout: float = 60) -> None:
    """Wait for Streamlit's health endpoint; fail with the server's output if it exits first."""
    wait_http_ok(f"{url}/_stcore/health", process, timeout, what="streamlit")


@contextmanager
def streamlit_app(env: Mapping[str, str] | None = None) -> Iterator[str]:
    """``streamlit run app.py`` from the app's folder (so its .streamlit/config.toml applies)."""
    port = free_port()
    argv = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
            str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]  # fmt: skip
    environ = {k: v for k, v in os.environ.items() if k != "WINERY_PREDICTION_URL"}
    process = subprocess.Popen(
        argv,
        cwd=WINERY,
        env={**environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process)
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    with streamlit_app() as url:
        yield url


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: apt-get install -y chromium chromium-driver "
            '(or deselect with -m "not browser")'
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="winery-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    # An explicit driver path: Selenium Manager (which downloads browsers) never runs.
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# -- the page ----------------------------------------------------------------------------------


def field(driver: WebDriver, label: str) -> WebElement:
    """An input by its aria-label, which Streamlit sets from the widget's label."""
    return WebDriverWait(driver, WAIT).until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, f'input[aria-label="{label}"]'))
    )


def type_into(driver: WebDriver, element: WebElement, text: str) -> None:
    """Replace a field's text and leave it (Tab), which commits the value to the form."""
    element.click()
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    element.send_keys(text)
    element.send_keys(Keys.TAB)
    WebDriverWait(driver, WAIT).until(lambda _: element.get_attribute("value") == text)


def step_up(driver: WebDriver, label: str, times: int) -> None:
    """Press the field's "+" button ``times`` times, waiting for each step to show."""
    element = field(driver, label)
    container = element.find_element(By.XPATH, "./ancestor::*[@data-testid='stNumberInputContainer'][1]")
    button = container.find_element(By.CSS_SELECTOR, "[data-testid='stNumberInputStepUp']")
    for _ in range(times):
        before = element.get_attribute("value")
        button.click()
        WebDriverWait(driver, WAIT).until(lambda _, b=before: element.get_attribute("value") != b)


def open_page(driver: WebDriver, app_url: str) -> None:
    driver.get(app_url)
    field(driver, features.FEATURES[-1].label)  # the last field drawn: the form is complete


def press_predict(driver: WebDriver) -> None:
    button = WebDriverWait(driver, WAIT).until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid='stBaseButton-primaryFormSubmit']"))
    )
    assert button.text == "Predict"
    button.click()


def shown_values(driver: WebDriver) -> dict[str, float]:
    """What every feature field shows now, by feature name."""
    return {f.name: float(field(driver, f.label).get_attribute("value")) for f in features.FEATURES}


def screenshot(driver: WebDriver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def model_prediction(model_dir: Path, values: Mapping[str, float]) -> float:
    import mlflow.pyfunc
    import pandas as pd

    frame = pd.DataFrame([[values[name] for name in features.FEATURE_NAMES]], columns=list(features.FEATURE_NAMES))
    return float(mlflow.pyfunc.load_model(str(model_dir)).predict(frame)[0])


def predict_and_read(driver: WebDriver) -> float:
    press_predict(driver)
    value = WebDriverWait(driver, WAIT).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid='stMetricValue']"))
    )
    label = driver.find_element(By.CSS_SELECTOR, "[data-testid='stMetricLabel']").text
    assert label == "Predicted quality"
    return float(value.text)


# -- tests -------------------------------------------------------------------------------------


def test_predict_shows_the_models_score(browser: WebDriver, app_url: str, infer_url: str, wine_model_dir: Path) -> None:
    open_page(browser, app_url)
    type_into(browser, field(browser, "Prediction URL"), infer_url)
    by_name = {f.name: f for f in features.FEATURES}
    for name, value in TYPED.items():
        feature = by_name[name]
        type_into(browser, field(browser, feature.label), feature.number_format % value)
    for name, times in STEPPED.items():
        step_up(browser, by_name[name].label, times)

    values = shown_values(browser)
    expected_values = {f.name: f.median for f in features.FEATURES} | TYPED
    expected_values |= {name: by_name[name].median + times * by_name[name].step for name, times in STEPPED.items()}
    assert values == pytest.approx(expected_values)

    shown = predict_and_read(browser)
    expected = model_prediction(wine_model_dir, values)
    path = screenshot(browser, "winery-prediction.png")
    assert abs(shown - expected) <= TOLERANCE, f"page shows {shown}, the model predicts {expected} ({path})"
    page = browser.find_element(By.TAG_NAME, "body").text
    assert f"Predicted {expected:.2f}: " in page
    assert "from 0 (very bad) to 10 (excellent)" in page
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid='stAlert']")


def test_dead_url_shows_a_message(browser: WebDriver, app_url: str) -> None:
    url = dead_url()
    open_page(browser, app_url)
    type_into(browser, field(browser, "Prediction URL"), url)
    type_into(browser, field(browser, features.FEATURES[-1].label), "11.0")
    press_predict(browser)
    alert = WebDriverWait(browser, WAIT).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid='stAlertContentError']"))
    )
    screenshot(browser, "winery-dead-url.png")
    assert alert.text.startswith("No prediction: could not connect to ")
    assert "connection refused" in alert.text
    assert url in alert.text
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "Traceback" not in page
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid='stMetricValue']")


# -- the image ---------------------------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.slow
def test_image_serves_the_page_prefilled(
    base_image: str, browser: WebDriver, infer_url: str, wine_model_dir: Path
) -> None:
    """The image, as a user runs it: non-root, URL from WINERY_PREDICTION_URL, Predict works."""
    tag = f"localhost/winery-test:{uuid.uuid4().hex[:8]}"
    build_image(WINERY / "Dockerfile", tag, base_image, context=WINERY)
    port = free_port()
    name = f"winery-test-{uuid.uuid4().hex[:8]}"
    run = [
        "run", "-d", "--rm", "--name", name, "--network", "host",
        "-e", f"WINERY_PREDICTION_URL={infer_url}", "-e", f"STREAMLIT_SERVER_PORT={port}",
        "-e", "STREAMLIT_SERVER_ADDRESS=127.0.0.1", tag,
    ]  # fmt: skip
    try:
        started = docker(*run, timeout=120)
        assert started.returncode == 0, started.stderr
        app_url = f"http://127.0.0.1:{port}"
        wait_healthy(app_url)
        user = docker("exec", name, "id", "-u", timeout=30)
        assert user.stdout.strip() not in ("", "0"), "the app must not run as root"
        open_page(browser, app_url)
        assert field(browser, "Prediction URL").get_attribute("value") == infer_url
        shown = predict_and_read(browser)
        screenshot(browser, "winery-image.png")
        assert abs(shown - model_prediction(wine_model_dir, shown_values(browser))) <= TOLERANCE
    finally:
        docker("rm", "-f", name, timeout=60)
        remove_image(tag)
