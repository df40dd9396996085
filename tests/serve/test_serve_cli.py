"""``stgnn serve`` / ``stgnn replay`` arguments: bad input is a one-line error and exit code 2."""
from __future__ import annotations

from stgnn.cli import main


def test_serve_rejects_a_missing_run_and_a_bad_time(tmp_path, capsys, serve_runs):
    assert main(["serve", "--run", str(tmp_path / "nope")]) == 2
    assert "is not a run folder" in capsys.readouterr().err
    assert main(["serve", "--run", str(serve_runs["STGNN"]), "--store", str(tmp_path / "s.sqlite"),
                 "--seed-until", "tomorrow"]) == 2
    assert "--seed-until='tomorrow' is not a time" in capsys.readouterr().err
    assert not (tmp_path / "s.sqlite").exists()            # nothing created before the input was checked


def test_replay_rejects_an_empty_window(capsys, serve_runs):
    run = str(serve_runs["UserHistory"])
    assert main(["replay", run, run, "--from", "2012-05-01T00:00:00Z", "--to", "2012-04-01T00:00:00Z"]) == 2
    assert "must be after --from" in capsys.readouterr().err


def test_the_cli_lists_serve_and_replay(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "serve" in out and "replay" in out


def test_serve_rejects_a_bad_worker_count_and_a_taken_port(tmp_path, capsys, serve_runs):
    import socket

    run = str(serve_runs["UserHistory"])
    assert main(["serve", "--run", run, "--store", str(tmp_path / "s.sqlite"), "--workers", "0"]) == 2
    assert "--workers 0: give 1 to 64" in capsys.readouterr().err
    assert not (tmp_path / "s.sqlite").exists()
    with socket.socket() as taken:                      # another program listens on the port
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--run", run, "--store", str(tmp_path / "s.sqlite"), "--workers", "2",
                     "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert not (tmp_path / "s.sqlite").exists()            # refused before the store was seeded
