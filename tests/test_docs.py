"""The documentation runs: what docs/ shows is what livefeed does.

docs/install.md is followed block by block, as a reader would, in a scratch project with a
virtualenv of its own: its commands run in a shell, its snippets go into the files it names, its
templates are rendered, and the outputs it shows are compared with what the commands printed
and what the stream sent. The example files of docs/deploy.md (Procfile, systemd unit, nginx
configuration) start real processes in front of that project. The rest checks that the
reference pages name exactly what the code has (settings, check ids, exports, CSS variables)
and that every relative link resolves.

Blocks of install.md carry an HTML comment telling this file what to do with them:
`<!-- docs-test: ACTION [ARGUMENT] -->` right above the fence; see Reader for the actions.
"""

import ast
import json
import os
import re
import select
import shlex
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

import livefeed
from livefeed import answers, conf
from livefeed.urls import urlpatterns
from tests import servers
from tests.sse_parser import Parser

DOCS = servers.ROOT / "docs"
EXAMPLES = DOCS / "examples"
README = servers.ROOT / "README.md"
USER = "alice"  # the site user the docs sign in as
DEPLOYED = "/srv/mysite"  # where deploy.md's examples put the project

MARKED_FENCE = re.compile(
    r"(?:<!-- docs-test: (?P<action>\w+)(?: (?P<arg>[^>]*?))? -->\n)?"
    r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```$",
    re.S | re.M,
)


@dataclass
class Block:
    action: str | None
    arg: str
    lang: str
    body: str

    def commands(self) -> list[str]:
        """The command lines of a shell block: continuations joined, comments and blank lines left out."""
        lines = self.body.replace("\\\n", " ").splitlines()
        return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, blockquoted ones too, with its docs-test marker if any."""
    text = re.sub(r"^> ?", "", path.read_text(), flags=re.M)
    return [Block(m["action"], m["arg"] or "", m["lang"], m["body"]) for m in MARKED_FENCE.finditer(text)]


def sse(text: str) -> Parser:
    """Parse a stream shown in the docs."""
    parser = Parser()
    parser.feed((text.strip("\n") + "\n\n").encode())
    return parser


def assert_same_events(received, shown) -> None:
    """Events as received match events as shown: names, ids and data, but for the time they were made."""
    assert len(received) == len(shown), (received, shown)
    for got, doc in zip(received, shown, strict=True):
        assert (got.type, got.last_event_id) == (doc.type, doc.last_event_id)
        got_data, doc_data = json.loads(got.data), json.loads(doc.data)
        for moment in ("created_at", "updated_at"):  # when it was made: not the same twice
            if moment in doc_data:
                datetime.fromisoformat(got_data.pop(moment))
                doc_data.pop(moment)
        assert got_data == doc_data


# Scratch project ------------------------------------------------------------------------------------


def virtualenv(path: Path) -> dict[str, str]:
    """Make a virtualenv whose dependencies are this one's, but not livefeed; return its shell's environment.

    Nothing is downloaded: a .pth file shows it this virtualenv's site-packages (Django, channels,
    daphne, channels-redis...), and the console scripts the docs call are written as pip writes them.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", path], check=True)
    site_packages = Path(sysconfig.get_path("purelib", vars={"base": str(path), "platbase": str(path)}))
    (site_packages / "test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    here = Path(sys.executable).parent
    for name in ("daphne", "django-admin"):
        script = path / "bin" / name
        script.write_text(f"#!{path / 'bin' / 'python'}\n" + (here / name).read_text().split("\n", 1)[1])
        script.chmod(0o755)
    unset = {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "PYTHONPATH", "PYTHONHOME"}
    env = {key: value for key, value in os.environ.items() if key not in unset}
    paths = [entry for entry in env.get("PATH", "").split(os.pathsep) if entry and Path(entry) != here]
    env.update(VIRTUAL_ENV=str(path), PATH=os.pathsep.join([str(path / "bin"), *paths]))
    return env


class CurlStream(servers.SSEClient):
    """A stream read through a documented `curl -N` command, as curl prints it."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str]) -> None:  # curl connects, not http.client
        self.process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert self.process.stdout is not None
        self.stdout = self.process.stdout
        self.parser = Parser()

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"curl printed nothing within {timeout:.1f} s")
        return os.read(self.stdout.fileno(), 65536)

    def close(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=10)  # reaps curl and closes its pipes


RENDER = """
from django.contrib.auth import get_user_model
from django.template import engines
from django.test import RequestFactory
request = RequestFactory().get("/")
request.user = get_user_model()._default_manager.get_by_natural_key({user!r})
print(engines["django"].from_string({template!r}).render({{}}, request))
"""


class Reader:
    """Someone following a docs page in a scratch project.

    Actions of the blocks: `run` (each line in a shell), `append PATH` and `write PATH` (the
    snippet into that file), `template` (rendered for the signed-in user), `serve` (each line
    started as a server), `stream` (the curl command started and read), `send` (each line run,
    or a Python block in `manage.py shell`, then the events it sent read from the stream), and
    `output` (what the block above printed: compared with what it did).
    """

    def __init__(self, root: Path, redis_url: str) -> None:
        self.root = root
        self.port = servers.free_port()
        self.env = virtualenv(root / ".venv")
        self.session_key = ""
        self.servers: list[servers.Process] = []
        self.stream: CurlStream | None = None
        self.substitutions = {
            "/path/to/livefeed": str(servers.package_source(root / "livefeed-source")),
            "redis://127.0.0.1:6379/0": redis_url,
            "127.0.0.1:8000": f"127.0.0.1:{self.port}",
        }

    def substitute(self, text: str) -> str:
        for documented, actual in {**self.substitutions, "<your session id>": self.session_key}.items():
            text = text.replace(documented, actual)
        return text

    def run(self, command: str | list[str]) -> str:
        """Run a command line in a shell (or an argument list) in the project; return what it printed."""
        args = ["bash", "-c", self.substitute(command)] if isinstance(command, str) else command
        result = subprocess.run(args, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def shell(self, code: str) -> str:
        return self.run(["python", "manage.py", "shell", "-c", code])

    def sign_in(self) -> None:
        self.session_key = self.shell(servers.sign_in_code(USER)).split()[-1]

    def follow(self, steps: list[Block]) -> None:
        for block, following in zip(steps, [*steps[1:], None], strict=True):
            shown = following.body if following is not None and following.action == "output" else None
            assert block.action, f"a {block.lang} block of the docs has no docs-test marker:\n{block.body}"
            getattr(self, f"do_{block.action}")(block, shown)

    def do_run(self, block: Block, shown: str | None) -> None:
        for command in block.commands():
            printed = self.run(command)
        if shown is not None:
            assert shown.strip() in printed

    def do_append(self, block: Block, shown: str | None) -> None:
        path = self.root / block.arg
        path.write_text(path.read_text() + "\n" + self.substitute(block.body))

    def do_write(self, block: Block, shown: str | None) -> None:
        (self.root / block.arg).write_text(self.substitute(block.body))

    def do_template(self, block: Block, shown: str | None) -> None:
        html = self.shell(RENDER.format(user=USER, template=block.body))
        assert 'data-livefeed data-stream-url="/livefeed/stream/"' in " ".join(html.split())
        for variable, attribute in (("livefeed_channels", "data-channels"), ("livefeed_events", "data-events")):
            for value in re.findall(rf'{variable}="([^"]*)"', block.body):
                assert f'{attribute}="{value}"' in html

    def do_serve(self, block: Block, shown: str | None) -> None:
        for command in block.commands():
            args = ["bash", "-c", f"exec {self.substitute(command)}"]
            self.servers.append(servers.Process(f"docs-{self.port}", args, self.port, self.env, self.root).start())

    def do_stream(self, block: Block, shown: str | None) -> None:
        (command,) = block.commands()
        self.stream = CurlStream(self.substitute(command), self.root, self.env).connected()
        if shown is not None:
            head = sse(shown)
            assert self.stream.parser.retry == head.retry
            assert self.stream.parser.comments[: len(head.comments)] == head.comments

    def do_send(self, block: Block, shown: str | None) -> None:
        assert self.stream is not None and shown is not None, "a send block follows a stream and shows its events"
        before = len(self.stream.parser.events)
        if block.lang == "python":
            self.shell(block.body)
        else:
            for command in block.commands():
                self.run(command)
        expected = sse(shown).events
        received = self.stream.events(before + len(expected))[before:]
        assert_same_events(received, expected)

    def do_output(self, block: Block, shown: str | None) -> None:
        """Checked by the block above it."""

    def stop(self) -> None:
        """Close the stream and stop the servers the docs started."""
        if self.stream is not None:
            self.stream.close()
        for server in self.servers:
            server.stop()


def install_steps() -> tuple[list[Block], list[Block]]:
    """docs/install.md up to its server, and from there on."""
    steps = blocks(DOCS / "install.md")
    first_server = next(index for index, block in enumerate(steps) if block.action == "serve")
    return steps[:first_server], steps[first_server:]


@pytest.fixture(scope="module")
def reader(tmp_path_factory, redis_url):
    """A scratch project set up as docs/install.md says, up to running its server, at a path like /srv/mysite."""
    reader = Reader(tmp_path_factory.mktemp("docs") / "mysite", redis_url)
    reader.follow(install_steps()[0])
    reader.sign_in()  # in a browser, as the docs say; here straight into the session table
    yield reader
    reader.stop()


# docs/install.md ----------------------------------------------------------------------------------


def test_install_md_marks_every_block_for_this_file():
    steps = [block for part in install_steps() for block in part]
    actions = {name.removeprefix("do_") for name in dir(Reader) if name.startswith("do_")}
    for block, following in zip(steps, [*steps[1:], None], strict=True):
        assert block.action in actions, f"block without a known docs-test marker:\n{block.body}"
        if block.action in {"append", "write"}:
            assert block.arg, block.body
        if block.action == "send":
            assert following is not None and following.action == "output", "show what a send block sends"


@pytest.mark.e2e
def test_install_md_from_pip_install_to_a_notification_in_curl(reader):
    """pip install, settings, asgi.py, urls, migrate, check and the widget ran in the fixture; now the
    server, `curl -N` on the stream, `livefeed_send` and the Python API, each event as shown."""
    # The package came from the checkout into the virtualenv, not from this repository's path.
    where = reader.shell("import livefeed; print(livefeed.__file__)").split()[-1]
    assert where.startswith(str(reader.root / ".venv"))
    reader.follow(install_steps()[1])
    log = (servers.ARTIFACTS / f"docs-{reader.port}.log").read_text()
    assert "Starting ASGI/Daphne" in log  # runserver is daphne's, as install.md says
    reader.stop()  # done with them: the deployment tests start their own servers
    # wire.md's captured stream has the fields of the notifications that arrived here.
    received = [json.loads(event.data) for event in reader.stream.parser.events if event.type == "notification"]
    for sample in (block for block in blocks(DOCS / "wire.md") if block.action == "sample"):
        for event in sse(sample.body).events:
            if event.type == "notification":
                assert json.loads(event.data).keys() == received[0].keys()


def test_wire_md_samples_are_streams_as_livefeed_writes_them():
    samples = [block for block in blocks(DOCS / "wire.md") if block.action == "sample"]
    assert samples
    for block in samples:
        parsed = sse(block.body)
        assert parsed.retry == conf.DEFAULTS["RETRY"]
        assert parsed.comments[0] == "connected"
        assert parsed.events and all(event.last_event_id for event in parsed.events)
        assert block.body.startswith(f"retry: {conf.DEFAULTS['RETRY']}\n: connected\nid: ")


# docs/deploy.md and docs/examples/ --------------------------------------------------------------------


def procfile() -> dict[str, str]:
    lines = (EXAMPLES / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def unit_service() -> list[tuple[str, str]]:
    """The [Service] entries of the systemd unit, in order."""
    section, entries = "", []
    for line in (EXAMPLES / "livefeed-daphne@.service").read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif line and not line.startswith(("#", ";")) and section == "[Service]":
            key, _, value = line.partition("=")
            entries.append((key, value))
    return entries


def deployed(text: str, root: Path) -> str:
    assert DEPLOYED in text
    return text.replace(DEPLOYED, str(root))


@pytest.fixture(scope="module")
def daphnes(reader):
    """Two daphne processes of the scratch project: the Procfile's web command and the unit's ExecStart."""
    commands = procfile()
    reader.run(commands["release"])
    web_port, unit_port = servers.free_port(), servers.free_port()
    assert "interface=0.0.0.0" in commands["web"]  # all interfaces, as a platform needs: loopback here
    web = ["bash", "-c", "exec " + commands["web"].replace("interface=0.0.0.0", "interface=127.0.0.1")]
    web_env = {**reader.env, "PORT": str(web_port)}
    service = unit_service()
    environment = dict(
        pair.split("=", 1) for key, value in service if key == "Environment" for pair in shlex.split(value)
    )
    (workdir,) = (deployed(value, reader.root) for key, value in service if key == "WorkingDirectory")
    (exec_start,) = (value for key, value in service if key == "ExecStart")
    unit = shlex.split(deployed(exec_start, reader.root).replace("%i", str(unit_port)))
    started = [
        servers.Process(f"docs-procfile-{web_port}", web, web_port, web_env, cwd=reader.root),
        servers.Process(f"docs-unit-{unit_port}", unit, unit_port, {**reader.env, **environment}, cwd=workdir),
    ]
    try:
        for process in started:
            process.start()
        yield web_port, unit_port
    finally:
        for process in started:
            process.stop()


def open_stream(reader: Reader, port: int) -> servers.SSEClient:
    """Open the scratch project's stream as a browser's EventSource does, signed in as the docs' user."""
    headers = {
        "Cookie": f"sessionid={reader.session_key}",
        "Accept": "text/event-stream",
        "Accept-Encoding": "gzip, deflate, br",
    }
    stream = servers.SSEClient(port, headers=headers)
    assert stream.response.status == 200
    assert stream.response.getheader("Content-Type") == "text/event-stream; charset=utf-8"
    assert stream.response.getheader("Content-Encoding") == "identity"
    return stream.connected()


@pytest.mark.e2e
def test_procfile_web_command_serves_streams(reader, daphnes):
    stream = open_stream(reader, daphnes[0])
    stream.close()
    assert stream.parser.retry == conf.DEFAULTS["RETRY"]


@pytest.mark.e2e
def test_systemd_unit_verifies_and_its_execstart_serves_streams(reader, daphnes, tmp_path):
    stream = open_stream(reader, daphnes[1])
    stream.close()
    assert stream.parser.retry == conf.DEFAULTS["RETRY"]
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed: the unit ran but was not verified")
    # An instance of the template, pointing at the scratch project so that its ExecStart exists.
    unit = tmp_path / f"livefeed-daphne@{daphnes[1]}.service"
    unit.write_text(deployed((EXAMPLES / "livefeed-daphne@.service").read_text(), reader.root))
    result = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True)
    assert result.returncode == 0 and unit.name not in result.stdout + result.stderr, result.stdout + result.stderr


@pytest.mark.e2e
def test_nginx_example_passes_events_through_at_once(reader, daphnes, tmp_path):
    """nginx with docs/examples/nginx.conf in front of both daphnes: an event sent once reaches a stream
    through nginx, and streams on each daphne, while they stay open (so nothing held it back)."""
    if servers.nginx_binary() is None:
        pytest.skip("nginx is not installed: run `bash scripts/test-deps.sh`")
    site = deployed((EXAMPLES / "nginx.conf").read_text(), reader.root)
    proxy = servers.nginx(site, list(daphnes), tmp_path)
    port = proxy.port
    streams = []
    try:
        streams = [open_stream(reader, port), *(open_stream(reader, daphne) for daphne in daphnes)]
        reader.run(f"python manage.py livefeed_send --user {USER} --title 'Through nginx'")
        received = [stream.events(1)[0] for stream in streams]
    finally:
        for stream in streams:
            stream.close()
        proxy.stop()
    assert {(event.type, event.last_event_id) for event in received} == {("notification", received[0].last_event_id)}
    assert json.loads(received[0].data)["title"] == "Through nginx"


def cron_command(name: str) -> str:
    """The command of deploy.md's cron line that runs this management command."""
    (line,) = (
        block.body.strip() for block in blocks(DOCS / "deploy.md") if block.action == "cron" and name in block.body
    )
    return line.split(None, 5)[5]  # after minute, hour, day, month, weekday


@pytest.mark.e2e
def test_deploy_md_prune_cron_line_runs(reader):
    assert "Deleted 0 events older than 86400 s." in reader.run(deployed(cron_command("livefeed_prune"), reader.root))


@pytest.mark.e2e
def test_deploy_md_deliver_cron_line_runs(reader):
    assert "Sent 0 email(s)." in reader.run(deployed(cron_command("livefeed_deliver"), reader.root))


@pytest.mark.e2e
def test_deliver_timer_and_service_verify_and_the_service_runs(reader, tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    units = []
    for name in ("livefeed-deliver.service", "livefeed-deliver.timer"):
        units.append(tmp_path / name)
        units[-1].write_text((EXAMPLES / name).read_text().replace(DEPLOYED, str(reader.root)))
    result = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
    assert result.returncode == 0 and "livefeed-deliver" not in result.stdout + result.stderr, result.stderr
    service = dict(line.split("=", 1) for line in units[0].read_text().splitlines() if line.startswith("Exec"))
    (workdir,) = (
        line.split("=", 1)[1] for line in units[0].read_text().splitlines() if line.startswith("WorkingDirectory=")
    )
    assert "Sent 0 email(s)." in reader.run(f"cd {workdir} && {service['ExecStart']}")


# Reference pages against the code ---------------------------------------------------------------


def test_settings_md_documents_exactly_the_livefeed_settings_and_their_defaults():
    text = (DOCS / "settings.md").read_text()
    table = text.split("<!-- LIVEFEED keys: start -->")[1].split("<!-- LIVEFEED keys: end -->")[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| `([^`]*)` \|", table, re.M)
    documented = dict(rows)
    assert len(rows) == len(documented), "a key is documented twice"
    assert set(documented) - set(conf.DEFAULTS) == set(), "documented but not in livefeed/conf.py"
    assert set(conf.DEFAULTS) - set(documented) == set(), "in livefeed/conf.py but not in docs/settings.md"
    for key, default in documented.items():
        assert ast.literal_eval(default) == conf.DEFAULTS[key], key


def test_every_system_check_id_is_documented_and_no_other():
    ids = set(re.findall(r'id="(livefeed\.[A-Z]\d{3})"', (servers.ROOT / "livefeed" / "checks.py").read_text()))
    assert ids
    reference = (DOCS / "troubleshooting.md").read_text() + (DOCS / "api.md").read_text()
    assert {check for check in ids if check not in reference} == set()
    pages = [README, *DOCS.glob("*.md")]
    mentioned = {check for page in pages for check in re.findall(r"livefeed\.[A-Z]\d{3}", page.read_text())}
    assert mentioned - ids == set(), "the docs name checks livefeed does not have"


def test_api_md_names_every_export_command_and_url():
    text = (DOCS / "api.md").read_text()
    names = [*livefeed.__all__, *answers.__all__]
    commands = [path.stem for path in (servers.ROOT / "livefeed" / "management" / "commands").glob("livefeed_*.py")]
    paths = [str(pattern.pattern).replace("<int:pk>", "ID").replace("<str:token>", "TOKEN") for pattern in urlpatterns]
    url_names = [f"livefeed:{pattern.name}" for pattern in urlpatterns]
    assert [name for name in [*names, *commands, *url_names] if not re.search(rf"\b{name}\b", text)] == []
    assert [path for path in paths if f"/livefeed/{path}" not in text] == []


def test_javascript_md_matches_the_widgets_api_and_stylesheet():
    text = (DOCS / "javascript.md").read_text()
    static = servers.ROOT / "livefeed" / "static" / "livefeed"
    css = (static / "livefeed.css").read_text()
    variable = r"--livefeed-[a-z0-9]+(?:-[a-z0-9]+)*"
    assert set(re.findall(variable, text)) == set(re.findall(variable, css))
    exported = " ".join(
        re.search(pattern, (static / name).read_text(), re.S)[1]  # type: ignore[index]
        for name, pattern in (
            ("livefeed-stream.js", r"const api = \{(.*?)\};"),
            ("livefeed.js", r"window\.livefeed = Object\.freeze\(\{(.*?)\n  \}\);"),
            ("livefeed-channels.js", r"window\.livefeed = Object\.freeze\(\{(.*?)\}\)"),
        )
    )
    for name in set(re.findall(r"`livefeed\.(\w+)\(", text)):
        assert re.search(rf"\b{name}\b", exported), f"livefeed.{name}() is documented but not defined"


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown page, and its explicit `<a id="...">` ones."""
    text = re.sub(r"^```.*?^```$", "", page.read_text(), flags=re.S | re.M)
    headings = re.findall(r"^#{1,6} (.+)$", text, re.M)
    explicit = set(re.findall(r'<a id="([^"]+)"></a>', text))
    return explicit | {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_every_relative_link_of_the_docs_and_readme_resolves():
    broken = []
    for page in [README, *DOCS.glob("*.md")]:
        text = re.sub(r"^```.*?^```$", "", page.read_text(), flags=re.S | re.M)
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in anchors(linked)):
                broken.append(f"{page.relative_to(servers.ROOT)}: {target}")
    assert broken == []


DESIGN = DOCS / "design.md"
DESIGN_REFERENCE = re.compile(r"docs/design\.md#([\w-]+)")


def design_citers() -> list[Path]:
    """The files whose comments and text may cite the design page."""
    suffixes = {".py", ".md", ".js", ".html"}
    sources = [README]
    for folder in ("livefeed", "docs", "tests", "bench", "project"):
        sources += [path for path in (servers.ROOT / folder).rglob("*") if path.suffix in suffixes]
    return sources


def test_every_reference_to_the_design_page_resolves():
    """Comments cite the design page with an anchor (a trap, a section): each anchor exists, and none
    cites the old design notes that were never in the repository ("DESIGN" and a section sign)."""
    known = anchors(DESIGN)
    broken, outside = [], []
    for path in design_citers():
        text, where = path.read_text(), path.relative_to(servers.ROOT)
        broken += [f"{where}: #{anchor}" for anchor in DESIGN_REFERENCE.findall(text) if anchor not in known]
        outside += [f"{where}: {line.strip()}" for line in text.splitlines() if "DESIGN \u00a7" in line]
    assert broken == []
    assert outside == []


def test_design_md_names_a_trap_anchor_for_each_trap_and_tests_that_exist():
    text = DESIGN.read_text()
    traps = re.findall(r'<a id="trap-(\d+)"></a>\n### (\d+)\.', text)
    assert traps and all(anchor == number for anchor, number in traps)
    assert [int(number) for _, number in traps] == list(range(1, len(traps) + 1))
    missing = [
        f"{path}::{name}"
        for path, name in set(re.findall(r"(tests/\w+\.py)::(\w+)", text))
        if not re.search(rf"^(?:async )?def {name}\(", (servers.ROOT / path).read_text(), re.M)
    ]
    assert missing == []


def test_design_md_lists_exactly_the_modules_of_the_package():
    table = DESIGN.read_text().split("## Modules")[1].split("\n## ")[0]
    listed = set(re.findall(r"^\| `([\w/.]+)` \|", table, re.M))
    package = servers.ROOT / "livefeed"
    modules = {path.name for path in package.glob("*.py")}
    folders = {f"{path.name}/" for path in package.iterdir() if path.is_dir() and path.name != "__pycache__"}
    assert {name for name in listed if name.endswith(".py") and "/" not in name} == modules
    for folder in folders:
        assert any(name.startswith(folder) for name in listed), f"livefeed/{folder} is not in design.md's table"
