"""The web console in a real headless browser (Debian's chromium + chromium-driver through selenium)
against the local cluster, started as a user starts it: ``kubectl trove console`` through kubectl's
plugin discovery, with a kubeconfig. It acts as that kubeconfig's identity, so:
- as the cluster admin, a database is created through the form, becomes Ready, is backed up, its
  credentials are shown, and it is deleted after the name is typed;
- as a ServiceAccount that may only read the custom resources, the page offers no credentials, and
  the actions come back as a refusal page with no password in it;
- without the login token nothing is served (401), and a POST without its CSRF field changes nothing.

kwok's pods run nothing, so the database reaches Ready with endpoints and Secrets but no engine: what
is checked is what the console reads and writes through the API server, and how it refuses.
Screenshots go to <basetemp>/console-screenshots; KUBETROVE_UPDATE_SCREENSHOTS=1 also copies them to
docs/images/ (docs/console.md shows them).
"""

from __future__ import annotations

import base64
import datetime
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from kubernetes import client
from localcluster.layout import Binaries
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from kubetrove.cli import commands
from kubetrove.render.names import ChildNames

from .conftest import LocalCluster
from .operator_support import *  # noqa: F403  (fixtures)
from .operator_support import ROOT, Operator, get_cr, poll

PLUGIN = f"#!{sys.executable}\nimport sys\nfrom kubetrove.cli.main import main\nsys.exit(main())\n"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"  # hack/setup.sh installs them
DOCS_IMAGES = ROOT / "docs" / "images"
WAIT = 150  # seconds for the operator to make a database Ready on a loaded 2-core machine


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[WebDriver, str], None]]:
    """shot(browser, name): a screenshot, kept as a test artifact (and in docs/images when asked)."""
    folder = tmp_path_factory.mktemp("console-screenshots")
    update = os.environ.get("KUBETROVE_UPDATE_SCREENSHOTS") == "1"

    def shot(browser: WebDriver, name: str) -> None:
        path = folder / f"console-{name}.png"
        assert browser.save_screenshot(str(path)), path
        if update:
            DOCS_IMAGES.mkdir(exist_ok=True)
            shutil.copy(path, DOCS_IMAGES / path.name)

    yield shot
    print(f"\nconsole screenshots: {folder}")


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """Headless chromium (one per module: starting it costs seconds on 2 cores)."""
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)  # --no-sandbox: tests run as root in CI containers
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


@pytest.fixture
def console(tmp_path: Path, local_cluster: LocalCluster, namespace: str) -> Iterator[Callable[..., str]]:
    """start(kubeconfig=admin): ``kubectl trove console --port 0`` running; its printed login URL."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "kubectl-trove").write_text(PLUGIN)
    (bindir / "kubectl-trove").chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT / "operator")}
    started: list[subprocess.Popen[str]] = []

    def start(kubeconfig: Path | None = None, ns: str | None = namespace) -> str:
        argv = [
            str(Binaries.locate().kubectl),
            "trove",
            "--kubeconfig",
            str(kubeconfig or local_cluster.kubeconfig),
        ]
        argv += [*(["-n", ns] if ns else []), "console", "--port", "0"]
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout is not None
        for line in proc.stdout:  # the URL is printed once it listens
            if line.startswith("http://"):
                return line.strip()
        raise AssertionError(
            f"the console exited ({proc.wait()}): {proc.stderr.read() if proc.stderr else ''}"
        )

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=10)


def root(url: str) -> str:
    """scheme://host:port of a console URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def wait_for(browser: WebDriver, check: Callable[[WebDriver], Any], seconds: float = 30) -> Any:
    return WebDriverWait(
        browser, seconds, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
    ).until(check)


def text_of(browser: WebDriver, element_id: str) -> str:
    return str(browser.find_element(By.ID, element_id).text)


def click(browser: WebDriver, element_id: str) -> None:
    """Click, retrying when the page reloaded itself in between (busy pages refresh every 5 s)."""
    wait_for(browser, lambda b: b.find_element(By.ID, element_id).click() or True)


def test_create_ready_backup_credentials_delete(
    browser: WebDriver,
    console: Callable[..., str],
    shots: Callable[[WebDriver, str], None],
    local_cluster: LocalCluster,
    operator: Operator,
    namespace: str,
) -> None:
    browser.set_window_size(1280, 900)
    browser.get(console())
    wait_for(browser, lambda b: b.find_element(By.ID, "namespaces"))
    browser.find_element(By.LINK_TEXT, namespace).click()
    click(browser, "create")

    # The form offers the catalog's engines and versions only.
    offering = Select(wait_for(browser, lambda b: b.find_element(By.ID, "offering")))
    catalog = commands.catalog()
    assert [o.get_attribute("value") for o in offering.options] == [
        f"{c['engine']}/{c['version']}" for c in catalog
    ]
    mariadb = next(c["version"] for c in catalog if c["engine"] == "mariadb" and c["default"])
    browser.find_element(By.ID, "name").send_keys("shop")
    offering.select_by_value(f"mariadb/{mariadb}")
    browser.find_element(By.ID, "storage").send_keys("2Gi")
    browser.find_element(By.ID, "database").send_keys("orders")
    browser.find_element(By.ID, "user").send_keys("app")
    shots(browser, "create")
    browser.find_element(By.ID, "submit").click()

    # The detail page refreshes itself until the operator reports Ready.
    wait_for(
        browser, lambda b: "DatabaseInstance/shop created" in b.find_element(By.CLASS_NAME, "flash").text
    )
    made = get_cr(local_cluster.api, "DatabaseInstance", namespace, "shop")
    assert made is not None and made["spec"]["datastore"] == {"type": "mariadb", "version": mariadb}
    assert made["spec"]["users"][0]["name"] == "app" and made["spec"]["storage"] == {"size": "2Gi"}
    wait_for(browser, lambda b: text_of(b, "phase") == "Ready", WAIT)
    assert ChildNames("shop").rw_service in text_of(browser, "endpoints")
    # Recent Events are the API server's, matched by the object's uid, shown as text (never markup).
    uid = get_cr(local_cluster.api, "DatabaseInstance", namespace, "shop")["metadata"]["uid"]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    client.EventsV1Api(local_cluster.api).create_namespaced_event(namespace, {
        "metadata": {"generateName": "shop-"}, "eventTime": now,
        "reportingController": "kubetrove.io/tests", "reportingInstance": "test-console", "action": "Check",
        "reason": "ConsoleCheck", "type": "Normal", "note": "<b>seen</b> by the console",
        "regarding": {"apiVersion": "kubetrove.io/v1alpha1", "kind": "DatabaseInstance", "name": "shop",
                      "namespace": namespace, "uid": uid},
    })  # fmt: skip
    browser.refresh()
    wait_for(browser, lambda b: "<b>seen</b> by the console" in text_of(b, "events"))

    click(browser, "backup-now")
    flash = wait_for(browser, lambda b: b.find_element(By.CLASS_NAME, "flash").text)
    assert flash.startswith("DatabaseBackup/shop-") and flash.endswith(" created."), flash
    backup = flash.split("/")[1].split(" ")[0]
    assert backup in wait_for(browser, lambda b: text_of(b, "backups"))
    made = client.CustomObjectsApi(local_cluster.api).get_namespaced_custom_object(
        "kubetrove.io", "v1alpha1", namespace, "databasebackups", backup
    )
    assert made["spec"]["source"] == {"kind": "DatabaseInstance", "name": "shop"}
    browser.set_window_size(1280, 1500)
    shots(browser, "detail")
    browser.set_window_size(1280, 900)

    click(browser, "reveal")
    secret = client.CoreV1Api(local_cluster.api).read_namespaced_secret(
        ChildNames("shop").credentials_secret, namespace
    )
    password = base64.b64decode(secret.data["root-password"]).decode()
    assert wait_for(browser, lambda b: text_of(b, "password")) == password
    assert text_of(browser, "user") == "root"
    shots(browser, "credentials")

    browser.get(f"{root(browser.current_url)}/ns/{namespace}")
    assert "shop" in text_of(browser, "databases")
    shots(browser, "list")

    browser.get(f"{root(browser.current_url)}/ns/{namespace}/db/shop/delete")
    button = wait_for(browser, lambda b: b.find_element(By.ID, "confirm-delete"))
    assert not button.is_enabled()  # until the name is typed exactly
    browser.find_element(By.ID, "confirm").send_keys("sho")
    assert not button.is_enabled()
    browser.find_element(By.ID, "confirm").send_keys("p")
    assert button.is_enabled()
    shots(browser, "delete")
    button.click()
    wait_for(
        browser,
        lambda b: "DatabaseInstance/shop is being deleted" in b.find_element(By.CLASS_NAME, "flash").text,
    )
    poll(lambda: get_cr(local_cluster.api, "DatabaseInstance", namespace, "shop") is None, "shop deleted")


def viewer_kubeconfig(local_cluster: LocalCluster, namespace: str, path: Path) -> Path:
    """A ServiceAccount that may get and list the custom resources in ``namespace``, nothing else."""
    core, rbac = client.CoreV1Api(local_cluster.api), client.RbacAuthorizationV1Api(local_cluster.api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "viewer"}})
    rbac.create_namespaced_role(namespace, {
        "metadata": {"name": "db-viewer"},
        "rules": [{"apiGroups": ["kubetrove.io"], "verbs": ["get", "list"],
                   "resources": ["databaseinstances", "databaseclusters", "databasebackups"]}],
    })  # fmt: skip
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "db-viewer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "db-viewer"},
        "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": namespace}],
    })  # fmt: skip
    token = core.create_namespaced_service_account_token(
        "viewer", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    admin = yaml.safe_load(local_cluster.kubeconfig.read_text())
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "viewer",
        "clusters": admin["clusters"],
        "users": [{"name": "viewer", "user": {"token": token}}],
        "contexts": [{"name": "viewer", "context": {"cluster": admin["clusters"][0]["name"], "user": "viewer",
                                                     "namespace": namespace}}],
    }))  # fmt: skip
    return path


def test_a_viewer_is_refused_and_shown_no_secret(
    browser: WebDriver,
    console: Callable[..., str],
    shots: Callable[[WebDriver, str], None],
    local_cluster: LocalCluster,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
) -> None:
    pg = next(c["version"] for c in commands.catalog() if c["engine"] == "postgresql" and c["default"])
    client.CustomObjectsApi(local_cluster.api).create_namespaced_custom_object(
        "kubetrove.io", "v1alpha1", namespace, "databaseinstances",
        {"apiVersion": "kubetrove.io/v1alpha1", "kind": "DatabaseInstance",
         "metadata": {"name": "ro", "namespace": namespace},
         "spec": {"datastore": {"type": "postgresql", "version": pg}}},
    )  # fmt: skip
    core = client.CoreV1Api(local_cluster.api)
    secret = poll(lambda: _secret(core, namespace, ChildNames("ro").credentials_secret), "ro's Secret")
    passwords = [base64.b64decode(v).decode() for v in secret.data.values()]

    # The viewer's context names the namespace; it may not list namespaces, so that one is offered.
    browser.get(console(viewer_kubeconfig(local_cluster, namespace, tmp_path / "viewer"), ns=None))
    wait_for(browser, lambda b: b.find_element(By.LINK_TEXT, namespace)).click()
    wait_for(browser, lambda b: b.find_element(By.LINK_TEXT, "ro")).click()
    assert "Secret" in wait_for(browser, lambda b: text_of(b, "no-reveal"))
    assert not browser.find_elements(By.ID, "reveal")

    click(browser, "backup-now")
    assert wait_for(browser, lambda b: text_of(b, "error-title")) == "403 Refused by Kubernetes"
    assert "cannot create resource" in text_of(browser, "error-message")
    shots(browser, "refused")
    # The reveal form is not offered; posted anyway (with a valid CSRF field), it is a refusal too.
    browser.back()
    retarget = (
        "arguments[0].action = arguments[0].action.replace(/backup$/, 'credentials'); arguments[0].submit();"
    )
    wait_for(
        browser,
        lambda b: (
            b.execute_script(retarget, b.find_element(By.CSS_SELECTOR, "form[action$='/backup']")) or True
        ),
    )
    assert wait_for(browser, lambda b: text_of(b, "error-title")) == "403 Refused by Kubernetes"
    assert not any(p and p in browser.page_source for p in passwords)
    assert not client.CustomObjectsApi(local_cluster.api).list_namespaced_custom_object(
        "kubetrove.io", "v1alpha1", namespace, "databasebackups"
    )["items"]


def _secret(core: client.CoreV1Api, namespace: str, name: str) -> Any:
    try:
        return core.read_namespaced_secret(name, namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_no_token_no_page_and_no_post_without_its_csrf_field(
    console: Callable[..., str], local_cluster: LocalCluster, operator: Operator, namespace: str
) -> None:
    url = console()
    base = root(url)
    anonymous = requests.get(f"{base}/ns/{namespace}", timeout=30)
    assert anonymous.status_code == 401 and "Not logged in" in anonymous.text
    assert requests.get(f"{base}/login?token=guess", timeout=30).status_code == 401
    # A page that is not this console's (DNS rebinding) is not served either.
    assert requests.get(f"{base}/", headers={"Host": "attacker.example"}, timeout=30).status_code == 421

    user = requests.Session()
    login = user.get(url, timeout=30, allow_redirects=False)
    assert login.status_code == 303 and "HttpOnly" in login.headers["Set-Cookie"]
    assert "SameSite=Strict" in login.headers["Set-Cookie"]
    assert user.get(f"{base}/ns/{namespace}", timeout=30).status_code == 200
    created = user.post(
        f"{base}/ns/{namespace}/new", data={"name": "x", "offering": "postgresql/16"}, timeout=30
    )
    assert created.status_code == 403 and "Form token missing or wrong" in created.text
    assert get_cr(local_cluster.api, "DatabaseInstance", namespace, "x") is None
