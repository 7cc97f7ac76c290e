"""The command line: teams, keys, export/import, and one `serve` per embedded store."""

from __future__ import annotations

import gc
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

import main
from tests.factories import spec_yaml

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STUDIO_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'studio.db'}")
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_team_apikey_import_export(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["team", "create", "local"]) == 0
    assert "cs_" in capsys.readouterr().out
    assert main.main(["apikey", "create", "--role", "editor", "--name", "ci"]) == 0
    assert "(editor)" in capsys.readouterr().out

    (workdir / "bot.yaml").write_text(spec_yaml(greeting="Hey"))
    assert main.main(["import", "bot.yaml"]) == 0
    assert "Imported faq-bot" in capsys.readouterr().out
    assert main.main(["import", "bot.yaml"]) == 1
    assert "--replace" in capsys.readouterr().err
    assert main.main(["import", "bot.yaml", "--replace"]) == 0
    capsys.readouterr()

    assert main.main(["export", "faq-bot"]) == 0
    exported = yaml.safe_load(capsys.readouterr().out)
    assert exported["greeting"] == "Hey" and exported["name"] == "faq-bot"


def test_the_database_lives_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """STUDIO_DATA_DIR holds every embedded store: SQLite too, unless STUDIO_DATABASE_URL says
    otherwise (two services with two data dirs never share one database)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STUDIO_DATABASE_URL", raising=False)
    for name in ("one", "two"):
        monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / name))
        assert main.main(["team", "create", "acme"]) == 0, capsys.readouterr().err
        assert (tmp_path / name / "studio.db").exists()
    assert not (tmp_path / "data").exists()


def test_bad_input_changes_nothing(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["team", "create", "Bad Name"]) == 1
    assert "team name" in capsys.readouterr().err
    assert main.main(["team", "create", "local"]) == 0
    assert main.main(["team", "create", "local"]) == 1
    assert "exists" in capsys.readouterr().err
    assert main.main(["apikey", "create", "--role", "god", "--name", "x"]) == 1
    assert "unknown role" in capsys.readouterr().err
    assert main.main(["apikey", "create", "--team", "nope", "--role", "viewer", "--name", "x"]) == 1
    (workdir / "bad.yaml").write_text("name: faq-bot\nprompt: [oops\n")
    assert main.main(["import", "bad.yaml"]) == 1
    assert "line" in capsys.readouterr().err
    assert main.main(["export", "faq-bot"]) == 1
    assert "No bot named" in capsys.readouterr().err
    assert main.main(["import", "missing.yaml"]) == 1


def test_apikey_list_and_revoke(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["team", "create", "local"]) == 0
    assert main.main(["apikey", "create", "--role", "editor", "--name", "ci"]) == 0
    key = capsys.readouterr().out.split()[-1]
    assert main.main(["apikey", "list"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [row[:3] for row in rows] == [["1", "owner", "owner"], ["2", "ci", "editor"]]
    assert key[:10] + "…" == rows[1][3] and key not in str(rows)

    assert main.main(["apikey", "revoke", "2"]) == 0
    assert "Revoked key 2 (ci, editor) in 'local'." in capsys.readouterr().out
    assert main.main(["apikey", "revoke", "2"]) == 1
    assert "No API key with id 2" in capsys.readouterr().err
    assert main.main(["apikey", "revoke", str(2**64)]) == 1
    assert "No API key" in capsys.readouterr().err
    assert main.main(["apikey", "list", "--team", "nope"]) == 1
    assert "no team named 'nope'" in capsys.readouterr().err
    assert main.main(["apikey", "list"]) == 0
    assert "ci" not in capsys.readouterr().out
    assert main.main(["apikey", "revoke", "1"]) == 1  # the team would have no owner left
    assert "only owner: create another owner key first" in capsys.readouterr().err
    assert main.main(["apikey", "create", "--role", "owner", "--name", "root"]) == 0
    assert main.main(["apikey", "revoke", "1"]) == 0


def test_knowledge_add_goes_through_a_running_service(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "x.txt").write_text("Refunds take five days.")
    args = ["knowledge", "add", "faq-bot", "x.txt", "--url", "http://127.0.0.1:9", "--key", "k"]
    assert main.main(args) == 2
    assert "No service at http://127.0.0.1:9" in capsys.readouterr().err


def test_chat_without_a_service_runs_the_studio_in_process(workdir: Path) -> None:
    """A piped transcript: build, test (a background job reported before leaving), promote."""
    lines = "\n".join(
        [
            "/newbot faq-bot",
            "/set faq-bot greeting Hello!",
            '/test faq-bot add "hi" expect contains "answer that"',
            "/test faq-bot",
            "exit",
        ]
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "chat", "--url", "http://127.0.0.1:9"],
        input=lines + "\n",
        capture_output=True,
        text=True,
        cwd=workdir,
        env={**os.environ},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Created" in out and "faq-bot" in out
    assert "greeting" in out
    assert "Added test 1" in out
    assert "1 passed, 0 failed" in out  # the background run's report, waited for
    assert "you> " not in out  # no prompt when stdin is not a terminal


def test_ctrl_c_leaves_the_chat_at_once(workdir: Path) -> None:
    """Ctrl-C while the chat waits for a line: it leaves now, quietly (it waited for one
    more line, then printed a KeyboardInterrupt traceback)."""
    import signal

    chat = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "chat", "--url", "http://127.0.0.1:9"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=workdir,
    )
    try:
        assert chat.stdin is not None and chat.stdout is not None
        chat.stdin.write("/bots\n")
        chat.stdin.flush()
        while "No bots yet" not in chat.stdout.readline():  # answered: now it waits for a line
            assert chat.poll() is None
        chat.send_signal(signal.SIGINT)
        assert chat.wait(timeout=15) == 130  # stdin stays open: no line, no EOF
        assert "Traceback" not in chat.communicate()[1]
    finally:
        chat.kill()
        chat.wait()


def test_a_second_serve_on_the_same_data_is_refused(tmp_path: Path) -> None:
    first = main._ServeLock(tmp_path / "serve.lock")
    first.acquire()
    with pytest.raises(main.StartupError, match="already using"):
        main._ServeLock(tmp_path / "serve.lock").acquire()


def test_serve_refuses_a_second_process(tmp_path: Path) -> None:
    lock = main._ServeLock(tmp_path / "data" / "serve.lock")
    lock.acquire()
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "serve", "--port", "0"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "STUDIO_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "already using" in result.stderr
    assert "PostgreSQL" in result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_holds_its_data_until_it_exits_and_chat_is_sent_to_it(workdir: Path) -> None:
    """The lock lives as long as `serve` (it was once dropped at once), and `chat` with no
    service at --url says where the running one answers instead of opening the data too."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "serve", "--port", str(port)],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("serve did not answer /healthz")
        gc.collect()  # a lock kept only by a dropped object would be released here
        with pytest.raises(main.HeldError, match="already using"):
            main._ServeLock(workdir / "data" / "serve.lock").acquire()
        chat = subprocess.run(
            [sys.executable, str(ROOT / "main.py"), "chat", "--url", "http://127.0.0.1:9"],
            input="/bots\n",
            capture_output=True,
            text=True,
            cwd=workdir,
            timeout=60,
        )
        assert chat.returncode == 1
        assert f"python main.py chat --url http://127.0.0.1:{port}/" in chat.stderr
        assert len(chat.stderr.strip().splitlines()) == 1
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_bad_setting_is_one_line_naming_the_variable(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STUDIO_LOG_FORMAT", "xml")
    monkeypatch.setenv("STUDIO_LLM_TIMEOUT_S", "soon")
    assert main.main(["serve"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "STUDIO_LOG_FORMAT=xml" in err and "'text' or 'json'" in err
    assert "STUDIO_LLM_TIMEOUT_S=soon" in err
    assert not (workdir / "data" / "serve.lock").exists()  # refused before taking anything


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("STUDIO_DATABASE_URL", "garbage", "postgresql+asyncpg://"),  # was a traceback
        ("STUDIO_DATABASE_URL", "postgresql://u:hunter2@db/x", "postgresql+asyncpg://"),
        ("STUDIO_QDRANT_URL", "qdrant:6333", "Qdrant server"),  # was a folder made in cwd
        ("STUDIO_PUBLIC_URL", "studio.example.com", "https:// URL"),
        ("STUDIO_LLM_API_BASE", "localhost:11434", "https:// URL"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector", "https:// URL"),
        ("STUDIO_WEB_RATE_PER_SESSION", "-5", "greater than 0"),  # was: every message refused
        ("STUDIO_WEB_RATE_PER_ADDRESS", "0", "greater than 0"),
    ],
)
def test_serve_refuses_a_setting_it_cannot_use(
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    expected: str,
) -> None:
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv("STUDIO_SECRET_KEY", "k" * 40)
    assert main.main(["serve"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: invalid setting {variable}")
    assert expected in err and "hunter2" not in err
    assert not (workdir / "data" / "serve.lock").exists()
    assert sorted(p.name for p in workdir.iterdir()) == ["data"] or not any(workdir.iterdir())


def test_a_data_dir_that_cannot_be_a_folder_is_one_line(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "taken").write_text("a file, not a folder")
    monkeypatch.setenv("STUDIO_DATA_DIR", str(workdir / "taken"))
    assert main.main(["serve"]) == 1  # was a FileExistsError traceback
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith(f"error: STUDIO_DATA_DIR={workdir / 'taken'} cannot hold the data")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main.main(["--version"])
    assert done.value.code == 0
    assert re.fullmatch(r"chat-studio \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


def test_help_is_cheap() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "main.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    for heavy in ("fastapi", "sqlalchemy", "litellm", "pydantic_settings"):
        assert f" {heavy}\n" not in result.stderr, f"--help imports {heavy}"


async def test_first_start_writes_private_key_files(tmp_path: Path) -> None:
    from tests.conftest import running_service, service_settings

    async with running_service(service_settings(tmp_path)) as service:
        assert service.key.startswith("cs_")
    for name in ("local.key", "secret.key"):
        assert (tmp_path / "data" / name).stat().st_mode & 0o777 == 0o600, name
    async with running_service(service_settings(tmp_path)) as again:  # no second team, same key
        assert again.key == service.key
        teams = await again.app.state.core.ops.create_team("other")
        assert teams.team == "other"


def test_a_server_database_needs_a_secret_key(tmp_path: Path) -> None:
    from studio.settings import Settings

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none",
        data_dir=tmp_path,
    )
    with pytest.raises(main.StartupError, match="STUDIO_SECRET_KEY"):
        main._secret(settings)
