"""Fast checks of the student set-up: the student repository's Binder files, student mode
(``course lab``), the Colab cell."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import studentlab
from coursekit.authoring.colab import course_colab_source
from coursekit.course import Course
from coursekit.publishing import lab

REPO = studentlab.REPO
#: The student repository's binder/ (``course publish`` copies it).
BINDER = REPO / "binder"
#: Student mode, as binder/student-mode.json defines it.
MODE = lab.StudentMode.read(REPO)
DEV_TOOLS = {"pytest", "ruff", "hypothesis", "playwright", "iniconfig", "pluggy"}


def _requirement_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_binder_requirements_are_the_course_pins_without_developer_tools() -> None:
    """The student image: every package pinned at the version requirements.txt pins (what
    the course is built and graded with); no developer tools."""
    course = dict(line.split("==") for line in _requirement_lines(REPO / "requirements.txt"))
    binder = _requirement_lines(BINDER / "requirements.txt")
    assert all("==" in line for line in binder), "binder/requirements.txt: pin every package"
    pins = dict(line.split("==") for line in binder)
    other = [f"{n}=={v} (course: {course.get(n)})" for n, v in pins.items() if course.get(n) != v]
    assert not other, f"binder/requirements.txt pins differ from requirements.txt: {other}"
    tools = DEV_TOOLS & {n.lower() for n in pins}
    assert not tools, f"binder/requirements.txt holds developer tools: {sorted(tools)}"


def test_runtime_matches_the_course_python() -> None:
    """runtime.txt names a Python that pyproject.toml's requires-python accepts."""
    runtime = (BINDER / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+)\.(\d+)", runtime)
    assert match, f"binder/runtime.txt: expected 'python-X.Y', got {runtime!r}"
    pyproject = (REPO / "pyproject.toml").read_text()
    floor = re.search(r'requires-python\s*=\s*">=(\d+)\.(\d+)"', pyproject)
    assert floor, "pyproject.toml: requires-python '>=X.Y' not found"
    assert tuple(map(int, match.groups())) >= tuple(map(int, floor.groups()))


def test_binder_says_where_binder_is_launched_from() -> None:
    """The student image sits at the top of the instructor's repository, saying that Binder
    is launched from the student repository, never from this one."""
    for name in ("requirements.txt", "postBuild"):
        comments = [line.lstrip("#").strip() for line in (BINDER / name).read_text().splitlines()
                    if line.startswith("#")]
        text = " ".join(" ".join(comments).split())
        assert "Binder is launched from the student repository" in text, name
        assert "never from the instructor's repository" in text, name


def test_postbuild_is_strict_and_reads_the_student_settings() -> None:
    """postBuild: executable bash with set -e, valid syntax, the settings of
    binder/student-mode.json (defined there once, not written into the script)."""
    path = BINDER / "postBuild"
    text = path.read_text()
    assert os.access(path, os.X_OK), "binder/postBuild must be executable"
    assert re.search(r"(?m)^set -e", text), "binder/postBuild must stop at the first error"
    subprocess.run(["bash", "-n", str(path)], check=True)
    assert "pip install --no-deps -e ." in text
    assert "binder/student-mode.json" in text
    for name in MODE.disabled_lab_plugins + MODE.disabled_server_extensions:
        assert name not in text, f"binder/postBuild names {name}: read it from the settings"
    for line in text.splitlines():
        if "labextension" in line and "--level" in line:
            assert "--level=sys_prefix" in line, f"JupyterLab 4 wants sys_prefix: {line}"


def test_postbuild_disables_what_student_mode_names(tmp_path: Path) -> None:
    """The jupyter commands postBuild runs, recorded by a stand-in `jupyter` on PATH (the
    real ones change the environment they run in): every plugin and server extension of
    binder/student-mode.json is disabled, the plugins locked too."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.txt"
    (bin_dir / "jupyter").write_text(f'#!/usr/bin/env bash\necho "$*" >> {log}\n')
    (bin_dir / "jupyter").chmod(0o755)
    repo = tmp_path / "repo"
    (repo / "binder").mkdir(parents=True)
    for name in ("postBuild", "student-mode.json"):
        (repo / "binder" / name).write_bytes((BINDER / name).read_bytes())
    # step 1 (pip install -e .) and step 3 (the overrides) are left out: the first line of
    # each is replaced, so that only the jupyter commands run
    script = (repo / "binder" / "postBuild").read_text()
    script = script.replace("python -m pip install --no-deps -e .", ":")
    script = re.sub(r"python - <<'PY'\n.*?\nPY\n", "", script, flags=re.S)
    (repo / "binder" / "postBuild").write_text(script)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}"
               f"{os.pathsep}{os.environ.get('PATH', '')}")
    subprocess.run(["bash", "binder/postBuild"], cwd=repo, env=env, check=True,
                   capture_output=True, text=True)
    calls = log.read_text().splitlines()
    plugins = " ".join(MODE.disabled_lab_plugins)
    assert f"labextension disable --level=sys_prefix {plugins}" in calls, calls
    assert f"labextension lock --level=sys_prefix {plugins}" in calls, calls
    extensions = " ".join(MODE.disabled_server_extensions)
    assert f"server extension disable --sys-prefix {extensions}" in calls, calls


def test_postbuild_overrides_equal_student_mode(tmp_path: Path) -> None:
    """The overrides postBuild writes are student mode's (run on a temp app dir)."""
    text = (BINDER / "postBuild").read_text()
    script = re.search(r"python - <<'PY'\n(.*?)\nPY\n", text, re.S)
    assert script, "binder/postBuild: the overrides step (python - <<'PY' ... PY) not found"
    settings = tmp_path / "settings"
    settings.mkdir()
    (settings / "overrides.json").write_text('{"some/plugin:kept": {"x": 1}}')
    env = dict(os.environ, JUPYTERLAB_DIR=str(tmp_path))
    subprocess.run([sys.executable, "-c", script.group(1)], env=env, check=True,
                   capture_output=True, cwd=REPO)  # from the repository's root, as Binder
    written = json.loads((settings / "overrides.json").read_text())
    assert written.pop("some/plugin:kept") == {"x": 1}, "existing overrides must be kept"
    assert written == MODE.setting_overrides


def test_student_config_disables_instructor_extensions(tmp_path: Path) -> None:
    """``course lab``'s private config: what Jupyter itself reports as disabled."""
    config = tmp_path / "config"
    lab.write_student_config(config, MODE)
    env = lab.student_env(config)
    jupyter = [sys.executable, "-m", "jupyter"]
    labext = subprocess.run([*jupyter, "labextension", "list"], env=env, capture_output=True,
                            text=True, check=True)
    disabled = labext.stdout + labext.stderr
    section = disabled.split("Disabled extensions:")[-1]
    for plugin in MODE.disabled_lab_plugins:
        assert plugin in section, f"{plugin} not disabled in student mode:\n{disabled}"
    server = subprocess.run([*jupyter, "server", "extension", "list"], env=env,
                            capture_output=True, text=True, check=True)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", server.stdout + server.stderr)
    for extension in MODE.disabled_server_extensions:
        assert re.search(rf"{re.escape(extension)} disabled", plain), plain


def test_student_env_puts_the_repository_package_first(tmp_path: Path) -> None:
    """Kernels of ``course lab`` import the student repository's tinytorch, not the
    instructor's (installed editable in this environment)."""
    repo = studentlab.publish_student_repository(tmp_path / "repo", "03_layers")
    env = lab.student_env(tmp_path / "config", package_root=repo)
    code = "import tinytorch.core.tensor as t; print(t.__file__); import tinytorch.core.layers"
    run = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.stdout.strip() == str(repo / "tinytorch" / "core" / "tensor.py")
    assert "release/03_layers/layers.ipynb" in run.stderr, run.stderr


def test_course_lab_serves_student_mode(tmp_path: Path) -> None:
    """``course lab DIR --no-browser`` prints a URL on the module in hand; the server has
    the student settings and no formgrader."""
    repo = studentlab.publish_student_repository(tmp_path / "repo", "02_activations")
    port = lab.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "coursekit.publishing.lab", "--root", str(REPO), "lab",
         str(repo), "--no-browser", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:
            found = re.search(r"open (http://127\.0\.0\.1:\d+/lab/tree/"
                              r"release/02_activations\?token=(\w+))", line)
            if found:
                url, token = found.groups()
                break
        assert url, "course lab printed no URL"
        assert f":{port}/" in url
        base = f"http://127.0.0.1:{port}"
        request = urllib.request.Request(
            f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification",
            headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            schema = json.load(response)["schema"]
        assert schema["properties"]["fetchNews"]["default"] == "false"
        request = urllib.request.Request(f"{base}/api/contents/",
                                         headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            names = {item["name"] for item in json.load(response)["content"]}
        assert "modules" not in names and "release" in names, names
        request = urllib.request.Request(f"{base}/formgrader",
                                         headers={"Authorization": f"token {token}"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=30)
        assert err.value.code == 404, "the formgrader is served in student mode"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_course_lab_refuses_a_folder_that_is_no_student_repository(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "coursekit.publishing.lab", "--root", str(REPO), "lab",
         str(tmp_path), "--no-browser"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "not a student repository made by `course publish`" \
        in run.stderr and "Traceback" not in run.stderr


def _source_notebooks() -> list[Path]:
    return sorted(REPO.glob("source_notebooks/[0-9][0-9]_*/*.ipynb"))


@pytest.mark.parametrize("notebook", _source_notebooks(), ids=lambda p: p.parent.name)
def test_notebook_starts_with_the_colab_setup_cell(notebook: Path) -> None:
    """Every module notebook installs tinytorch in Colab before any code imports it.

    `course build` inserts the cell (from [student_repository] in course.toml) before the
    first code cell; it is locked, so grading restores it if a student edits it.
    """
    import nbformat

    where = notebook.relative_to(REPO)
    cells = nbformat.read(notebook, as_version=4).cells
    code = [c for c in cells if c.cell_type == "code"]
    assert code and code[0].source == course_colab_source(Course(REPO)), (
        f"{where}: the first code cell must be coursekit.authoring.colab.course_colab_source() "
        "(run `course build` after changing course.toml)")
    assert code[0].metadata["nbgrader"]["locked"] is True, f"{where}: the Colab cell is locked"
    release = REPO / "release" / notebook.parent.name / notebook.name
    released = [c for c in nbformat.read(release, as_version=4).cells if c.cell_type == "code"]
    assert released[0].source == code[0].source, f"{release}: the Colab cell reaches students"
