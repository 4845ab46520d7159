#!/usr/bin/env python3
"""Run a course notebook top to bottom in a real JupyterLab, in headless Chromium, the way a student would.

    python tools/lab_check.py notebooks/02_content_loss.ipynb [--smoke | --mode quick] [--timeout S] [--screenshot F]
    python tools/lab_check.py notebooks/10_playground.ipynb --smoke --upload big.png [--upload-widget 1] \
        --server-arg="--ServerApp.tornado_settings={'websocket_max_message_size': 536870912}"   # as ./dev.sh course

Not part of the test suite (nbval runs the notebooks there): this checks what nbval cannot, that a fresh
JupyterLab runs them with "Run All Cells" and that the ipywidgets controls render. It needs Chromium and its
driver (Debian: ``apt-get install chromium chromium-driver``) and selenium (``pip install selenium``, in any
environment); JupyterLab itself comes from the project's ``.venv`` (``./dev.sh setup``).

What it does:
  1. copies the notebook's folder into a fresh scratch directory (the checkout is never written to);
  2. starts a fresh JupyterLab server there, with new settings/workspace dirs, NSTLAB_WEIGHTS=random
     (``--weights``), NSTLAB_SMOKE=1 with ``--smoke``, NSTLAB_MODE with ``--mode`` (none of the caller's),
     OMP_NUM_THREADS with ``--threads``;
  3. opens the notebook in headless Chromium, waits for the kernel, then clicks the menu Run > Run All Cells;
  4. polls until the kernel is idle and no cell is queued or running (or ``--timeout``);
  5. inspects the page: execution counts, error outputs, stderr outputs, widget views and widget errors
     ("Error displaying widget", "Loading widget"), widget images shown in another shape than their own,
     browser console errors; optionally a screenshot;
  6. with ``--upload FILE`` (repeatable): chooses each file in turn in a FileUpload button of the notebook
     (``--upload-widget N``, counted from 0), as a student picking it would, and reports for each how long
     until the text of the box around the button changed (an ImagePicker's message: the kernel got it) or
     ``--upload-wait`` ran out (it never arrived), with the browser console lines meanwhile;
  7. prints a JSON summary and exits 0 if everything ran and rendered, 1 if not, 2 if the harness broke.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

DEFAULT_JUPYTER = str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "jupyter")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN = "nstlab-run-in-lab"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_ERROR_TEXTS = ("Error displaying widget", "Loading widget", "model not found", "Error rendering")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def log(*a):
    print("[run_in_lab]", *a, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------- JS probes
# The lab is started with --LabApp.expose_app_in_browser=True, so window.jupyterapp is the JupyterLab app:
# used to find the notebook panel, read the kernel status and the cell models (output types). Everything
# the student *sees* (prompts, rendered outputs, widgets, error texts) is read from the DOM.

JS_FIND_PANEL = r"""
const name = arguments[0];
const app = window.jupyterapp;
if (!app) return null;
for (const w of app.shell.widgets('main')) {
  if (w.context && w.context.path && w.context.path.endsWith(name) && w.content && w.sessionContext) {
    window.__nbpanel = w; return w.id;
  }
}
return null;
"""

JS_KERNEL = r"""
const w = window.__nbpanel;
if (!w) return {ready: false};
const sc = w.sessionContext;
const k = sc.session && sc.session.kernel;
return {ready: sc.isReady, status: k ? k.status : null, display: sc.kernelDisplayStatus,
        kernel_name: k ? k.name : null, connection: k ? k.connectionStatus : null,
        has_kernel: !!k, dialog: Array.from(document.querySelectorAll('.jp-Dialog')).map(d => d.innerText)};
"""

JS_STATE = r"""
const w = window.__nbpanel;
const sc = w.sessionContext;
const k = sc.session && sc.session.kernel;
const prompts = [], counts = [];
for (let i = 0; i < w.content.widgets.length; i++) {
  const cell = w.content.widgets[i];
  if (cell.model.type !== 'code') continue;
  const p = cell.node.querySelector('.jp-InputArea-prompt');
  prompts.push(p ? p.textContent.trim() : '');
  counts.push(cell.model.executionCount);
}
return {status: k ? k.status : null, prompts: prompts, counts: counts,
        dialog: Array.from(document.querySelectorAll('.jp-Dialog')).map(d => d.innerText)};
"""

JS_REPORT = r"""
const w = window.__nbpanel;
const nb = w.content;
const res = {cells: [], widget_views: 0, widget_elements: 0, widget_output_areas: 0, widget_texts: []};
let ci = 0;
for (let i = 0; i < nb.widgets.length; i++) {
  const m = nb.widgets[i].model;
  if (m.type !== 'code') continue;
  const node = nb.widgets[i].node;
  const outs = [];
  for (let j = 0; j < m.outputs.length; j++) {
    const o = m.outputs.get(j).toJSON();
    outs.push({type: o.output_type, name: o.name || null,
               ename: o.ename || null, evalue: o.evalue || null,
               traceback: o.traceback ? o.traceback.join('\n') : null,
               text: o.text ? (Array.isArray(o.text) ? o.text.join('') : o.text) : null,
               mimes: o.data ? Object.keys(o.data) : []});
  }
  const dom = [];
  const oa = nb.widgets[i].outputArea;
  const kids = oa ? oa.widgets : [];
  for (let j = 0; j < kids.length; j++) {
    const el = kids[j].node;
    const out = el.querySelector('.jp-OutputArea-output');
    const isWidget = outs[j] && outs[j].mimes.includes(arguments[0]);
    const nWidgetElems = el.querySelectorAll('.jupyter-widgets, [class*=" widget-"], [class^="widget-"]').length;
    const text = el.innerText;
    const bad = arguments[1].filter(t => text.includes(t));
    if (bad.length) {
      const idx = Math.min(...bad.map(t => text.indexOf(t)));
      res.widget_texts.push({cell: ci, text: text.slice(idx, idx + 300)});
    }
    const rendered = !!isWidget && !!el.querySelector('.jupyter-widgets') && !bad.length;
    dom.push({mime: out ? out.getAttribute('data-mime-type') : null, widget_view: !!isWidget,
              rendered_widget: rendered, text: text.slice(0, 4000), n_widget_elems: nWidgetElems});
    if (isWidget) { res.widget_output_areas++; if (rendered) res.widget_views++; }
    res.widget_elements += nWidgetElems;
  }
  res.cells.push({index: i, code_index: ci, source: m.sharedModel.getSource().slice(0, 200),
                  execution_count: m.executionCount,
                  prompt: (node.querySelector('.jp-InputArea-prompt') || {textContent: ''}).textContent.trim(),
                  outputs: outs, dom_outputs: dom});
  ci++;
}
res.dialogs = Array.from(document.querySelectorAll('.jp-Dialog')).map(d => d.innerText);
res.toasts = Array.from(document.querySelectorAll('.Toastify__toast')).map(d => d.innerText);
return res;
"""


JS_WIDGET_IMAGES = r"""
const nb = window.__nbpanel.content.node;
return Array.from(nb.querySelectorAll('img.jupyter-widget-image, img.widget-image')).map(img => ({
  natural: [img.naturalWidth, img.naturalHeight], shown: [img.clientWidth, img.clientHeight]}));
"""

# A FileUpload view opens its file dialog with a click() on an <input type=file> that is not in the page. This
# keeps that input instead (in the page, with an id) so that selenium can choose a file in it as a user would.
JS_CATCH_FILE_INPUT = r"""
if (!window.__nstlabCatch) {
  const click = HTMLInputElement.prototype.click;
  HTMLInputElement.prototype.click = function () {
    if (this.type !== 'file') return click.call(this);
    const old = document.getElementById('nstlab-file-input');
    if (old && old !== this) old.removeAttribute('id');
    this.id = 'nstlab-file-input';
    if (!this.isConnected) document.body.appendChild(this);
  };
  window.__nstlabCatch = true;
}
"""

JS_UPLOAD_BOX = r"""
const buttons = window.__nbpanel.content.node.querySelectorAll('.jupyter-widget-upload, .widget-upload');
const button = buttons[arguments[0]];
if (!button) return null;
const box = button.closest('.jupyter-widget-vbox, .widget-vbox') || button.parentElement;
const html = Array.from(box.querySelectorAll('.jupyter-widget-html, .widget-html'));
return {count: buttons.length, text: html.map(h => h.textContent).join(' | '), button: button.textContent};
"""


def stretched_images(images: list[dict]) -> list[dict]:
    """Widget images whose shown width/height ratio differs from their own by more than 2 %."""
    bad = []
    for im in images:
        (nw, nh), (sw, sh) = im["natural"], im["shown"]
        if min(nw, nh, sw, sh) > 0 and abs((sw / sh) / (nw / nh) - 1) > 0.02:
            bad.append(im)
    return bad


def upload(driver, path: Path, index: int, wait: float) -> dict:
    """Choose ``path`` in the ``index``-th FileUpload button; wait until the text of the HTML widgets in the
    box around it changes (the button's own label counts files in the browser, whether they arrived or not)."""
    before = driver.execute_script(JS_UPLOAD_BOX, index)
    if before is None:
        return {"file": str(path), "error": f"no FileUpload button number {index}"}
    driver.execute_script(JS_CATCH_FILE_INPUT)
    button = driver.find_elements(By.CSS_SELECTOR, ".jupyter-widget-upload, .widget-upload")[index]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    time.sleep(0.5)
    before = driver.execute_script(JS_UPLOAD_BOX, index)
    button.click()
    t0 = time.time()
    driver.find_element(By.ID, "nstlab-file-input").send_keys(str(path.resolve()))
    after = before
    while time.time() - t0 < wait:
        after = driver.execute_script(JS_UPLOAD_BOX, index)
        if after["text"] != before["text"]:
            break
        time.sleep(0.5)
    changed = after["text"] != before["text"]
    console = [f"{e['level']}: {e['message'][:300]}" for e in driver.get_log("browser")]
    return {"file": path.name, "bytes": path.stat().st_size, "arrived": changed,
            "seconds": round(time.time() - t0, 1), "text_before": before["text"], "text_after": after["text"],
            "button_after": after["button"], "console": console}


# ------------------------------------------------------------------------------------------------ server

class Lab:
    def __init__(self, jupyter: str, root: Path, smoke: bool, weights: str, threads: int | None,
                 extra: list[str] | None = None, mode: str | None = None):
        self.root = root
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        state = root / ".lab-state"
        for d in ("config", "settings", "workspaces", "runtime", "data"):
            (state / d).mkdir(parents=True, exist_ok=True)
        # No news pop-up, no update check in a fresh lab.
        notif = state / "settings" / "@jupyterlab" / "apputils-extension"
        notif.mkdir(parents=True, exist_ok=True)
        (notif / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env = dict(os.environ)
        env.pop("MPLBACKEND", None)
        env.pop("NSTLAB_SMOKE", None)
        env.pop("NSTLAB_MODE", None)
        env.update({
            "NSTLAB_WEIGHTS": weights,
            "JUPYTER_CONFIG_DIR": str(state / "config"),
            "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
            "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
            "PYTHONUNBUFFERED": "1",
        })
        if smoke:
            env["NSTLAB_SMOKE"] = "1"
        if mode is not None:
            env["NSTLAB_MODE"] = mode
        if threads is not None:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
        self.log_path = root / ".lab-state" / "server.log"
        cmd = [jupyter, "lab", "--no-browser", f"--port={self.port}", "--ip=127.0.0.1",
               f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
               "--ServerApp.port_retries=0", "--LabApp.expose_app_in_browser=True",
               "--LabApp.news_url=None", "--ServerApp.terminals_enabled=False", *(extra or [])]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self.logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, env=env, cwd=root, stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log("jupyter lab pid", self.proc.pid, "port", self.port, "log", self.log_path)

    def wait_up(self, timeout=90):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={TOKEN}", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"jupyter lab did not answer in {timeout}s; see {self.log_path}")

    def stop(self):
        if self.proc.poll() is None:
            try:  # polite shutdown first: stops kernels cleanly
                req = urllib.request.Request(f"{self.base}/api/shutdown?token={TOKEN}", method="POST")
                urllib.request.urlopen(req, timeout=5).close()
                self.proc.wait(timeout=15)
            except Exception:
                pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # our own process group only (start_new_session)
                self.proc.wait(timeout=10)
            except Exception:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.logf.close()


def make_driver(width=1400, height=1000):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--window-size={width},{height}", "--hide-scrollbars", "--disable-extensions",
              "--no-first-run", "--disable-background-networking", "--renderer-process-limit=2"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def wait_for(fn, timeout, interval=0.5, what="condition"):
    t0 = time.time()
    last = None
    while time.time() - t0 < timeout:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def click_run_all(driver) -> str:
    """Menu Run > Run All Cells, as a student would; falls back to the command if the menu fails."""
    try:
        items = driver.find_elements(By.CSS_SELECTOR, "#jp-MainMenu .lm-MenuBar-item")
        run = [i for i in items if i.text.strip() == "Run"]
        if not run:
            raise RuntimeError("no Run menu")
        run[0].click()
        entry = wait_for(lambda: [e for e in driver.find_elements(By.CSS_SELECTOR, ".lm-Menu .lm-Menu-item")
                                  if e.is_displayed() and
                                  e.find_element(By.CSS_SELECTOR, ".lm-Menu-itemLabel").text.strip()
                                  == "Run All Cells"], 10, what="Run All Cells menu entry")
        entry[0].click()
        return "menu Run > Run All Cells"
    except Exception as e:  # pragma: no cover - fallback
        log("menu click failed:", e, "- using the command notebook:run-all-cells")
        driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        return "command notebook:run-all-cells (menu failed)"


def full_screenshot(driver, path: Path, width=1400, max_height=16000):
    """Make the viewport as tall as the notebook (CDP device metrics) so the whole notebook is in one PNG."""
    try:
        driver.execute_script("""
            const app = window.jupyterapp;
            if (app && !app.shell.leftCollapsed) app.commands.execute('application:toggle-left-area');""")
        time.sleep(0.5)
        # Content height = bottom of the "Click to add a cell" footer (or the last cell), which leaves out
        # the empty "scroll past end" padding under the notebook.
        measure = """
            const nb = window.__nbpanel.content.node;
            const sc = nb.querySelector('.jp-WindowedPanel-outer') || nb;
            const cells = nb.querySelectorAll('.jp-Cell');
            const last = nb.querySelector('.jp-Notebook-footer') || cells[cells.length - 1] || sc;
            const bottom = last.getBoundingClientRect().bottom - sc.getBoundingClientRect().top + sc.scrollTop;
            return [bottom, sc.clientHeight, window.innerHeight];"""
        bottom, client_h, inner_h = driver.execute_script(measure)
        h = int(min(max_height, max(inner_h, bottom + (inner_h - client_h) + 20)))
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": h, "deviceScaleFactor": 1, "mobile": False})
        time.sleep(1.0)
        bottom, client_h, inner_h = driver.execute_script(measure)  # re-measure: layout may reflow
        h = int(min(max_height, max(1000, bottom + (inner_h - client_h) + 20)))
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": h, "deviceScaleFactor": 1, "mobile": False})
        time.sleep(1.0)
        driver.execute_script("""
            const nb = window.__nbpanel.content.node;
            (nb.querySelector('.jp-WindowedPanel-outer') || nb).scrollTop = 0;""")
        time.sleep(2.5)  # let content-visibility cells and images paint
    except Exception as e:
        log("could not resize for a full screenshot:", e)
    driver.save_screenshot(str(path))


# ------------------------------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebook", type=Path)
    ap.add_argument("--smoke", action="store_true", help="set NSTLAB_SMOKE=1 (tiny sizes and steps)")
    ap.add_argument("--mode", choices=("real", "quick", "smoke"),
                    help="set NSTLAB_MODE (default: none, the real settings; quick: live teaching)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds for the whole run-all (default 1800)")
    ap.add_argument("--screenshot", type=Path, help="write a PNG of the whole notebook at the end")
    ap.add_argument("--weights", default="random", help="NSTLAB_WEIGHTS for the kernel (default random)")
    ap.add_argument("--jupyter", default=DEFAULT_JUPYTER, help=f"jupyter executable (default {DEFAULT_JUPYTER})")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "nstlab-lab-check",
                    help="scratch parent; each run copies the notebook's folder into a new subfolder here")
    ap.add_argument("--threads", type=int, help="OMP_NUM_THREADS for the kernel (default: torch's own)")
    ap.add_argument("--strict", action="store_true", help="also fail on stderr output and browser console errors")
    ap.add_argument("--clean", action="store_true", help="delete the scratch copy afterwards")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds to wait after done for widgets to render")
    ap.add_argument("--dump", type=Path, help="write the raw per-cell page report (JSON) here, for debugging")
    ap.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                    help="an extra argument for 'jupyter lab' (repeatable), e.g. the settings ./dev.sh course uses")
    ap.add_argument("--upload", action="append", default=[], type=Path, metavar="FILE",
                    help="after the run, choose FILE in a FileUpload button (repeatable: in turn)")
    ap.add_argument("--upload-widget", type=int, default=0, metavar="N",
                    help="which FileUpload button of the notebook, from 0 (default 0)")
    ap.add_argument("--upload-wait", type=float, default=60, metavar="S",
                    help="seconds to wait for each upload to reach the kernel (default 60)")
    args = ap.parse_args(argv)

    src = args.notebook.resolve()
    if not src.is_file():
        print(json.dumps({"notebook": str(args.notebook), "ok": False, "harness_error": "no such file"}))
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=f"{src.stem}-", dir=args.workdir))
    # Copy the notebook's folder (siblings included, as a student's checkout has them); skip checkpoints.
    shutil.copytree(src.parent, root / src.parent.name, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    rel = f"{src.parent.name}/{src.name}"

    summary: dict = {"notebook": str(args.notebook), "copy": str(root / rel), "smoke": args.smoke, "mode": args.mode,
                     "weights": args.weights, "ok": False}
    lab = driver = None
    rc = 2
    try:
        lab = Lab(args.jupyter, root, args.smoke, args.weights, args.threads, args.server_arg, args.mode)
        summary["server_log"] = str(lab.log_path)
        lab.wait_up()
        driver = make_driver()
        driver.set_script_timeout(30)
        url = f"{lab.base}/lab/tree/{rel}?token={TOKEN}"
        t_open = time.time()
        driver.get(url)
        wait_for(lambda: driver.execute_script(JS_FIND_PANEL, src.name), 120, what="notebook panel")
        k = wait_for(lambda: (lambda s: s if s.get("ready") and s.get("status") == "idle" else None)(
            driver.execute_script(JS_KERNEL)), 120, what="kernel idle")
        summary["kernel"] = k.get("kernel_name")
        summary["seconds_to_kernel_ready"] = round(time.time() - t_open, 1)
        if k.get("dialog"):
            summary["dialogs_before_run"] = k["dialog"]
        # The lab's cell rendering needs the notebook to be laid out; give the UI a moment.
        time.sleep(1.0)

        how = click_run_all(driver)
        t0 = time.time()
        summary["run_all_via"] = how
        # Wait for the run to start: some cell queued/running or kernel busy.
        started = False
        t_start = time.time()
        while time.time() - t_start < 20:
            s = driver.execute_script(JS_STATE)
            if s["status"] == "busy" or any(p.startswith("[*]") for p in s["prompts"]):
                started = True
                break
            time.sleep(0.2)
        if not started:
            log("run did not visibly start; trying the command")
            driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            summary["run_all_via"] = how + " + command fallback"
        # Poll until done: kernel idle and nothing queued/running, stable for 3 consecutive polls.
        stable = 0
        timed_out = False
        last_report = 0.0
        while True:
            s = driver.execute_script(JS_STATE)
            busy = s["status"] != "idle" or any("*" in p for p in s["prompts"])
            stable = 0 if busy else stable + 1
            if stable >= 3:
                break
            el = time.time() - t0
            if el > args.timeout:
                timed_out = True
                break
            if el - last_report > 30:
                last_report = el
                done = sum(c is not None for c in s["counts"])
                log(f"{el:.0f}s: kernel {s['status']}, {done}/{len(s['counts'])} cells have a count")
            time.sleep(0.5)
        summary["seconds"] = round(time.time() - t0, 1)
        summary["timed_out"] = timed_out

        # Let widgets render (they render asynchronously after the comm messages arrive).
        t_settle = time.time()
        while True:
            rep = driver.execute_script(JS_REPORT, WIDGET_MIME, list(WIDGET_ERROR_TEXTS))
            loading = any("Loading widget" in t["text"] for t in rep["widget_texts"])
            if (not loading and time.time() - t_settle >= args.settle) or time.time() - t_settle > 30:
                break
            time.sleep(0.5)

        if args.dump:
            args.dump.write_text(json.dumps(rep, indent=1, ensure_ascii=False))
        cells = rep["cells"]
        summary["code_cells"] = len(cells)
        summary["executed"] = sum(c["execution_count"] is not None for c in cells)
        summary["not_executed"] = [c["code_index"] for c in cells if c["execution_count"] is None]
        errors, stderr = [], []
        for c in cells:
            for o in c["outputs"]:
                if o["type"] == "error":
                    errors.append({"cell": c["code_index"], "ename": o["ename"], "evalue": o["evalue"],
                                   "traceback": ANSI.sub("", o["traceback"] or "")[-3000:]})
                elif o["type"] == "stream" and o["name"] == "stderr":
                    stderr.append({"cell": c["code_index"], "text": ANSI.sub("", o["text"] or "")[-1500:]})
        # What the student actually sees as an error-coloured output area, from the DOM.
        dom_stderr_areas = sum(1 for c in cells for d in c["dom_outputs"]
                               if d["mime"] == "application/vnd.jupyter.stderr")
        summary["errors"] = errors
        summary["stderr"] = stderr
        summary["stderr_output_areas_in_dom"] = dom_stderr_areas
        summary["widget_outputs"] = rep["widget_output_areas"]
        summary["widget_views_rendered"] = rep["widget_views"]
        summary["widget_dom_elements"] = rep["widget_elements"]
        summary["widget_errors"] = rep["widget_texts"]
        per_cell_widgets = {c["code_index"]: sum(d["n_widget_elems"] for d in c["dom_outputs"] if d["widget_view"])
                            for c in cells if any(d["widget_view"] for d in c["dom_outputs"])}
        summary["widget_elements_per_cell"] = per_cell_widgets
        empty_widget_outputs = sorted({c["code_index"] for c in cells for d in c["dom_outputs"]
                                       if d["widget_view"] and not d["rendered_widget"]})
        if rep["dialogs"]:
            summary["dialogs"] = rep["dialogs"]
        if rep["toasts"]:
            summary["notifications"] = rep["toasts"]
        console = []
        try:
            for e in driver.get_log("browser"):
                if e.get("level") in ("SEVERE",) or ("widget" in e.get("message", "").lower()
                                                     and e.get("level") == "WARNING"):
                    console.append(f"{e['level']}: {e['message'][:400]}")
        except Exception as e:
            console.append(f"(could not read console: {e})")
        summary["browser_console_errors"] = console
        images = driver.execute_script(JS_WIDGET_IMAGES)
        summary["widget_images"] = len(images)
        summary["stretched_widget_images"] = stretched_images(images)
        summary["uploads"] = [upload(driver, path, args.upload_widget, args.upload_wait) for path in args.upload]

        problems = []
        if timed_out:
            problems.append(f"timed out after {args.timeout}s")
        if summary["not_executed"]:
            problems.append(f"{len(summary['not_executed'])} code cell(s) not executed")
        if errors:
            problems.append(f"{len(errors)} error output(s)")
        if rep["widget_texts"]:
            problems.append("widget error/loading text shown")
        if empty_widget_outputs:
            problems.append(f"widget outputs not rendered in code cells {empty_widget_outputs}")
        if summary["stretched_widget_images"]:
            problems.append(f"{len(summary['stretched_widget_images'])} widget image(s) shown in another shape")
        lost = [u["file"] for u in summary["uploads"] if not u.get("arrived")]
        if lost:
            problems.append(f"upload(s) that never reached the kernel: {lost}")
        if rep["dialogs"]:
            problems.append("a dialog is open")
        if args.strict and stderr:
            problems.append(f"{len(stderr)} stderr output(s) (--strict)")
        if args.strict and console:
            problems.append(f"{len(console)} browser console error(s) (--strict)")
        summary["problems"] = problems
        summary["ok"] = not problems
        rc = 0 if summary["ok"] else 1
    except Exception as e:
        summary["harness_error"] = f"{type(e).__name__}: {e}"
        rc = 2
    finally:
        if driver is not None:
            if args.screenshot:
                try:
                    args.screenshot.parent.mkdir(parents=True, exist_ok=True)
                    full_screenshot(driver, args.screenshot.resolve())
                    summary["screenshot"] = str(args.screenshot.resolve())
                except Exception as e:
                    summary["screenshot_error"] = str(e)
            try:
                driver.quit()
            except Exception:
                pass
        if lab is not None:
            lab.stop()
        if args.clean:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return rc


if __name__ == "__main__":
    sys.exit(main())
