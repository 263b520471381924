"""The studio in a real browser: ``python -m vid3d.studio`` on 127.0.0.1 (a free port), driven by Debian's
headless Chromium through chromedriver (selenium). Load the page, a bad upload (one line in the page),
upload an image, pick a preset, generate (2 steps at the model's 32x48), wait for the video element,
reconstruct, download the ``.ply``; screenshots are saved under the test's tmp dir and checked non-blank.

Skipped only when the chromium / chromedriver binaries are absent (CI installs them: ``.ci/run``).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
        reason="no chromium/chromedriver binaries (Debian: apt-get install chromium chromium-driver)",
    ),
]


def _check_screenshot(path: Path) -> np.ndarray:
    """A real page: a PNG with many colours and visible contrast (a blank page is one flat colour)."""
    import imageio.v3 as iio

    img = iio.imread(path)[..., :3]
    assert img.shape[0] > 300 and img.shape[1] > 600, img.shape
    colours = len(np.unique(img.reshape(-1, 3), axis=0))
    assert colours > 50, f"{path.name}: {colours} colours: a blank page?"
    assert float(img.std()) > 10.0, f"{path.name}: pixel std {img.std():.1f}: a blank page?"
    return img


def test_studio_in_chromium(tmp_path, studio_server):
    try:
        import gradio  # noqa: F401  (the studio's server; imported here only to say what is missing)
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as EC
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError as e:
        pytest.fail(f"the browser test needs the extras: pip install -e '.[studio,browser-test]' ({e})")
    import imageio.v3 as iio

    shots = tmp_path / "screenshots"
    shots.mkdir()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    rng = np.random.default_rng(0)
    image = tmp_path / "room.png"  # smooth colour ramps with a few blocks: an image, at 96x144
    yy, xx = np.mgrid[0:96, 0:144]
    img = np.stack([xx * 255 / 143, yy * 255 / 95, 128 + 0 * xx], -1).astype(np.uint8)
    for _ in range(6):
        y, x = rng.integers(0, 80), rng.integers(0, 120)
        img[y : y + 16, x : x + 24] = rng.integers(0, 255, 3)
    iio.imwrite(image, img)
    bad = tmp_path / "notes.png"  # not an image
    bad.write_text("this is not a picture\n")

    url, proc, log = studio_server(tmp_path / "out", timeout=180)
    driver = None
    try:
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1500,1900",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
        ):
            opts.add_argument(flag)
        opts.add_experimental_option(
            "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
        )
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        driver.execute_cdp_cmd(
            "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        wait = WebDriverWait(driver, 120)
        driver.get(url)
        wait.until(EC.element_to_be_clickable((By.ID, "generate")))
        # the frustum plot of the default preset, drawn on load (a matplotlib PNG in an <img>)
        wait.until(
            lambda d: (
                d.find_elements(By.CSS_SELECTOR, "#path_plot img")
                and "processing" not in d.find_element(By.ID, "path_plot").text
            )
        )
        driver.save_screenshot(str(shots / "1_loaded.png"))
        status = driver.find_element(By.ID, "status")

        # a bad upload: one line in the page, naming the file
        upload = driver.find_element(By.CSS_SELECTOR, "#image_upload input[type=file]")
        upload.send_keys(str(bad))
        wait.until(lambda d: "cannot be read as an image" in status.text)
        assert "notes.png" in status.text, status.text
        assert len(status.text.strip().splitlines()) == 1, status.text
        driver.find_element(By.CSS_SELECTOR, "#image_upload button[aria-label='Clear']").click()

        # the image, a preset, 2 sampler steps
        upload = driver.find_element(By.CSS_SELECTOR, "#image_upload input[type=file]")
        upload.send_keys(str(image))
        wait.until(lambda d: "room: 32x48" in status.text)
        driver.find_element(By.CSS_SELECTOR, "#preset input[value='pan_left']").click()
        steps = driver.find_element(By.CSS_SELECTOR, "#steps input[type=number]")
        steps.clear()
        steps.send_keys("2\t")
        driver.find_element(By.ID, "generate").click()
        WebDriverWait(driver, 240).until(lambda d: "Generated" in status.text or "rror" in status.text)
        assert status.text.startswith("Generated"), status.text
        video = WebDriverWait(driver, 30).until(
            EC.presence_of_element_located((By.CSS_SELECTOR, "#video video"))
        )
        assert video.get_attribute("src"), "the video element has no source"
        command = driver.find_element(By.CSS_SELECTOR, "#command textarea").get_attribute("value")
        assert "trajectory=pan_left" in command and "sampler.num_steps=2" in command, command
        driver.save_screenshot(str(shots / "2_generated.png"))

        # reconstruct (a small fit) and download the .ply
        for elem, value in (("recon_steps", "20"), ("recon_gauss", "300")):
            box = driver.find_element(By.CSS_SELECTOR, f"#{elem} input[type=number]")
            box.clear()
            box.send_keys(value + "\t")
        driver.find_element(By.ID, "reconstruct").click()
        WebDriverWait(driver, 240).until(lambda d: "Reconstructed" in status.text or "rror" in status.text)
        assert status.text.startswith("Reconstructed"), status.text
        link = WebDriverWait(driver, 30).until(
            EC.element_to_be_clickable((By.CSS_SELECTOR, "#ply a[href*='gaussians.ply']"))
        )
        link.click()
        end = time.monotonic() + 60
        while time.monotonic() < end and not (downloads / "gaussians.ply").is_file():
            time.sleep(0.5)
        ply = downloads / "gaussians.ply"
        assert ply.is_file(), f"no download: {list(downloads.iterdir())}"
        head = ply.read_bytes()[:400]
        assert head.startswith(b"ply\n"), head[:200]
        vertices = re.search(rb"element vertex (\d+)", head)
        assert vertices and int(vertices.group(1)) > 0, head[:200]
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(shots / "3_reconstructed.png"))
    finally:
        if driver is not None:
            driver.quit()
    for name in ("1_loaded.png", "2_generated.png", "3_reconstructed.png"):
        _check_screenshot(shots / name)
