"""A real browser for the end-to-end test: headless Chromium from Debian, driven by Selenium.

Debian's ``chromium`` and ``chromium-driver`` packages (``make system-deps`` installs them)
give ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` of the same build; Selenium is told
both paths, so Selenium Manager never downloads a browser or a driver. As root (the e2e runs
as root for its mount namespaces) Chromium needs ``--no-sandbox``.

:class:`Browser` is one browser profile (one user's cookies); :meth:`Browser.sign_in` clicks
through Airflow's FAB OAuth login page (the provider's button) and the identity provider's
form, as a person does; :meth:`Browser.screenshot` saves a PNG in the artifact folder
(``OPENMWAA_E2E_ARTIFACTS`` if set, else a folder under pytest's base temporary directory,
printed by the test).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = "apt-get install -y chromium chromium-driver (make system-deps)"
WAIT = 60.0


def artifact_dir(default: Path) -> Path:
    """Where screenshots go: ``$OPENMWAA_E2E_ARTIFACTS`` (a CI job uploads it), else
    ``default``."""
    chosen = Path(os.environ.get("OPENMWAA_E2E_ARTIFACTS") or default)
    chosen.mkdir(parents=True, exist_ok=True)
    return chosen


class Browser:
    """One headless Chromium session (its own profile: its own cookies)."""

    def __init__(self, artifacts: Path, label: str) -> None:
        for path in (CHROMIUM, CHROMEDRIVER):
            if not (os.access(path, os.X_OK) or shutil.which(Path(path).name)):
                raise FileNotFoundError(f"{path} not found: {INSTALL_HINT}")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--window-size=1440,1000",
            "--lang=en-US",
            "--no-first-run",
            "--disable-extensions",
        ):
            options.add_argument(argument)
        artifacts.mkdir(parents=True, exist_ok=True)
        self.artifacts = artifacts
        self.label = label
        self.driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        self.driver.set_page_load_timeout(WAIT)

    def close(self) -> None:
        """Quit the browser."""
        self.driver.quit()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- pages ------------------------------------------------------------------------

    def get(self, url: str) -> None:
        """Open ``url``."""
        self.driver.get(url)

    @property
    def url(self) -> str:
        """The current page's URL."""
        return str(self.driver.current_url)

    def text(self) -> str:
        """The visible text of the page."""
        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def wait(self, what: str, check: Callable[[Any], Any], timeout: float = WAIT) -> Any:
        """Until ``check(driver)`` is truthy; on timeout a screenshot, then AssertionError."""
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.5).until(check)
        except TimeoutException:
            shot = self.screenshot(f"timeout-{what}")
            raise AssertionError(
                f"{self.label}: timed out after {timeout:.0f} s waiting for {what} at "
                f"{self.url} (screenshot {shot}); page text:\n{self.text()[:2000]}"
            ) from None

    def wait_for_text(self, text: str, timeout: float = WAIT) -> None:
        """Until the page shows ``text``."""
        self.wait(
            repr(text),
            lambda d: text in d.find_element(By.TAG_NAME, "body").text,
            timeout,
        )

    def screenshot(self, name: str) -> Path:
        """Save the page as ``<label>-<name>.png`` in the artifact folder; returns the path."""
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in f"{self.label}-{name}")
        path = self.artifacts / f"{safe}.png"
        try:
            saved = self.driver.save_screenshot(str(path))
        except WebDriverException as error:  # a dead session must not hide the real failure
            saved = False
            print(f"\nscreenshot {path} failed: {error}")
        if not saved:
            print(f"\nscreenshot {path} was not saved")
        return path

    def cookie(self, name: str) -> str | None:
        """A cookie of the current site."""
        found = self.driver.get_cookie(name)
        return None if found is None else str(found["value"])

    def fetch(self, method: str, url: str, body: Any = None, token: str | None = None) -> Any:
        """``fetch()`` from the page, with the browser's cookies; returns {status, body}."""
        script = """
            const [method, url, body, token, done] = arguments;
            const headers = {"Content-Type": "application/json", "Accept": "application/json"};
            if (token) headers["Authorization"] = "Bearer " + token;
            fetch(url, {method, headers, credentials: "include",
                        body: body === null ? undefined : JSON.stringify(body)})
              .then(async r => done({status: r.status, body: await r.text()}))
              .catch(e => done({status: 0, body: String(e)}));
        """
        return self.driver.execute_async_script(script, method, url, body, token)

    # --- signing in -------------------------------------------------------------------

    def sign_in(self, airflow_url: str, username: str, password: str, provider: str) -> None:
        """Open Airflow, click the provider's button on its login page, fill in the identity
        provider's form and submit it. Returns when the browser is back on Airflow (signed
        in or refused: the caller checks which)."""
        self.driver.set_script_timeout(30)
        self.get(f"{airflow_url}/auth/login/")
        button = self.wait(
            f"the sign-in button of {provider}",
            expected_conditions.element_to_be_clickable((By.ID, f"btn-signin-{provider}")),
        )
        self.screenshot("login-page")
        button.click()
        self.wait("the identity provider's form", lambda d: d.find_elements(By.ID, "username"))
        self.driver.find_element(By.ID, "username").send_keys(username)
        self.driver.find_element(By.ID, "password").send_keys(password)
        self.screenshot("identity-provider")
        self.driver.find_element(By.ID, "sign-in").click()
        self.wait("the way back to Airflow", lambda d: d.current_url.startswith(airflow_url))
        time.sleep(0.5)
