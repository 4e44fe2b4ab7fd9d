"""The package as a whole: generated stubs, namespace, typing, installation."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import virtufin.websocketmanager

CLIENT_DIR = Path(__file__).resolve().parents[1]
PACKAGE_DIR = CLIENT_DIR / "src" / "virtufin" / "websocketmanager"
GENERATE = CLIENT_DIR / "scripts" / "generate.sh"


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result  # type: ignore[no-any-return]


def test_generated_stubs_match_the_proto(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    run(["bash", str(GENERATE), "--out", str(tmp_path)], env=env)
    committed = PACKAGE_DIR / "_proto"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["__init__.py", "websocketmanager_pb2.py", "websocketmanager_pb2.pyi", "websocketmanager_pb2_grpc.py"]
    _, mismatch, errors = filecmp.cmpfiles(tmp_path, committed, names, shallow=False)
    assert (mismatch, errors) == ([], []), "run clients/python/scripts/generate.sh and commit the result"
    # The same check as CI would run it.
    assert "up to date" in run(["bash", str(GENERATE), "--check"], env=env).stdout


def test_generate_check_detects_drift(tmp_path: Path) -> None:
    # A copy of the client beside a copy of the proto, with the stubs changed by hand.
    client = tmp_path / "clients" / "python"
    shutil.copytree(CLIENT_DIR / "scripts", client / "scripts")
    shutil.copytree(PACKAGE_DIR / "_proto", client / "src" / "virtufin" / "websocketmanager" / "_proto")
    shutil.copytree(CLIENT_DIR.parents[1] / "proto" / "virtufin", tmp_path / "proto" / "virtufin")
    stub = client / "src" / "virtufin" / "websocketmanager" / "_proto" / "websocketmanager_pb2_grpc.py"
    stub.write_text(stub.read_text() + "# edited by hand\n")
    result = subprocess.run(
        ["bash", str(client / "scripts" / "generate.sh"), "--check"],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "differ from the proto" in result.stderr


def test_proto_descriptor_is_the_services() -> None:
    from virtufin.websocketmanager import websocketmanager_pb2 as pb

    assert pb.DESCRIPTOR.name == "virtufin/websocketmanager.proto"
    assert pb.DESCRIPTOR.package == "virtufin"
    service = pb.DESCRIPTOR.services_by_name["WebSocketManager"]
    assert service.full_name == "virtufin.WebSocketManager"
    assert {m.name for m in service.methods} >= {
        "Connect", "List", "Disconnect", "StartPublish", "StopPublish", "Send", "SendRaw",
        "SetTag", "GetTag", "SetTags", "GetTags", "Reconnect", "Subscribe",
    }  # fmt: skip


def test_virtufin_is_a_namespace_package_that_others_can_share(tmp_path: Path) -> None:
    assert not (PACKAGE_DIR.parent / "__init__.py").exists()
    assert getattr(virtufin, "__file__", None) is None
    # Another distribution's virtufin.api, installed elsewhere on the path.
    api = tmp_path / "virtufin" / "api"
    api.mkdir(parents=True)
    (api / "__init__.py").write_text("NAME = 'api'\n")
    code = textwrap.dedent(
        """
        import virtufin.api
        from virtufin.websocketmanager import WebSocketManagerClient
        print(virtufin.api.NAME, WebSocketManagerClient.__name__)
        """
    )
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    result = run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": path})
    assert result.stdout.split() == ["api", "WebSocketManagerClient"]


def test_types_check_strictly() -> None:
    # Our code, its tests and the manual's examples, against the generated .pyi stubs.
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(CLIENT_DIR / "pyproject.toml")],
        cwd=CLIENT_DIR,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_install_into_a_fresh_venv_and_as_a_wheel(tmp_path: Path) -> None:
    # What a fresh checkout holds; building there also keeps build/ out of the source tree.
    source = tmp_path / "source"
    shutil.copytree(
        CLIENT_DIR,
        source,
        ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".venv"),
    )
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    # Outside the source tree, so that only what was installed can be imported.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    check = textwrap.dedent(
        """
        import pathlib, virtufin, virtufin.websocketmanager as wsm
        from virtufin.websocketmanager import WebSocketManagerClient
        package = pathlib.Path(wsm.__file__).parent
        assert getattr(virtufin, "__file__", None) is None, virtufin.__file__
        assert (package / "py.typed").is_file()
        assert (package / "_proto" / "websocketmanager_pb2.pyi").is_file()
        print(wsm.__version__, WebSocketManagerClient().target)
        """
    )

    run([python, "-m", "pip", "install", "--quiet", str(source)], env=env, cwd=tmp_path)
    assert run([python, "-c", check], env=env, cwd=tmp_path).stdout.split() == ["0.1.0", "localhost:5002"]

    wheels = tmp_path / "wheels"
    run([python, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(source)], env=env, cwd=tmp_path)
    (wheel,) = wheels.glob("virtufin_websocketmanager-0.1.0-py3-none-any.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "virtufin/websocketmanager/py.typed" in names
    assert "virtufin/websocketmanager/_proto/websocketmanager_pb2_grpc.py" in names
    assert "virtufin/__init__.py" not in names
    assert not any(name.startswith(("tests/", "examples/")) for name in names)

    run([python, "-m", "pip", "uninstall", "--quiet", "--yes", "virtufin-websocketmanager"], env=env, cwd=tmp_path)
    run([python, "-m", "pip", "install", "--quiet", str(wheel)], env=env, cwd=tmp_path)
    assert run([python, "-c", check], env=env, cwd=tmp_path).stdout.split() == ["0.1.0", "localhost:5002"]
