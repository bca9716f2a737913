#!/usr/bin/python3
"""The page of `baton ui` in a real browser (Debian's chromium, headless,
driven by python3-selenium through chromium-driver), on `baton dev` with the
registration example's two workers, as scripts/demo runs them.

It finds a brand registration's campaign by filter, opens it, counts its
timeline's activity bars against its history, sends the `review` signal from
the page and sees the campaign complete without a reload; sees the
`carriers` rate limit's tokens move while registrations run; and keeps a
screenshot of each view. Exit 0 when all of it held, 1 with the reason.

usage: ui.py BIN_DIR PLUGIN_DIR OUT_DIR
Run by the criterion test ui/the_page_works_in_chromium (tests/integration/test_ui.c).
Everything it starts it stops by pid; the browser has no network beyond
127.0.0.1 (--host-resolver-rules), so the page fetches nothing else."""
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

BIN, PLUGINS, OUT = sys.argv[1:4]
HOME = tempfile.mkdtemp(prefix="baton-ui-")
ENV = dict(os.environ, BATON_HOME=HOME)
procs = []  # (name, Popen), stopped in reverse order


LIBC = ctypes.CDLL(None)


def die_with_us():
    """Runs in each child before exec: it is killed when this script dies,
    however it dies (PR_SET_PDEATHSIG), so a killed test leaves nothing."""
    LIBC.prctl(1, signal.SIGKILL)


def spawn(name, *argv):
    log = open(os.path.join(HOME, name + ".log"), "w")
    p = subprocess.Popen(argv, env=ENV, stdout=log, stderr=subprocess.STDOUT,
                         preexec_fn=die_with_us)
    procs.append((name, p))
    return p


def log_of(name):
    with open(os.path.join(HOME, name + ".log")) as f:
        return f.read()


def until(what, cond, timeout=30.0):
    """Polls cond every 50 ms until it is truthy; its value, or fails."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out: " + what)
        time.sleep(0.05)


def baton(*args):
    r = subprocess.run([os.path.join(BIN, "baton"), *args], env=ENV,
                       capture_output=True, text=True, timeout=60)
    if r.returncode:
        raise AssertionError("baton %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
    return r.stdout


def start_stack():
    dev = spawn("dev", os.path.join(BIN, "baton"), "dev", "--no-worker",
                "--queues", "default,campaigns")
    until("baton dev writes dev.env",
          lambda: os.path.exists(os.path.join(HOME, "dev.env")) or dev.poll() is not None)
    if dev.poll() is not None:
        raise AssertionError("baton dev ended: " + log_of("dev"))
    for team, queue, plugin in (("team-a", "default", "registration"),
                                ("team-b", "campaigns", "campaigns")):
        spawn(team, os.path.join(BIN, "baton-worker"), "--queues", queue,
              "--plugin", os.path.join(PLUGINS, plugin + ".so"))
    for team in ("team-a", "team-b"):
        until(team + "'s worker gets partitions in both roles",
              lambda: re.search(r'msg="task partitions assigned" count=[1-9]', log_of(team))
              and re.search(r'msg="partitions assigned" count=[1-9]', log_of(team)), 60)
    spawn("ui", os.path.join(BIN, "baton"), "ui", "--listen", "127.0.0.1:0")
    m = until("baton ui says where it serves",
              lambda: re.search(r"serving (http://127\.0\.0\.1:\d+/)", log_of("ui")))
    return m.group(1)


def api(url, path):
    with urllib.request.urlopen(url + "api/" + path, timeout=10) as r:
        return json.load(r)


def history_of(url, wid):
    """The history of instance wid, or [] while it does not exist yet."""
    try:
        return api(url, "instances/" + urllib.request.quote(wid, safe="") + "/history")
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        raise


def store_instances(n):
    """n finished instances stored the way commits index them (meta hash,
    <kp>:idx:all and :idx:completed), older than the real ones, in one Lua
    call: the page must come as fast with them as without."""
    env = dev_env()
    host, port = env["BATON_REDIS"].rsplit(":", 1)
    cli = ["redis-cli", "-h", host, "-p", port]
    key = until("the index of all instances", lambda: subprocess.run(
        cli + ["--scan", "--pattern", "*:idx:all"], capture_output=True, text=True,
        check=True).stdout.strip())
    script = ("for i = 1, tonumber(ARGV[2]) do local id = 'bulk-' .. i "
              "redis.call('HSET', ARGV[1] .. ':{' .. id .. '}', 'type', 'bulk', 'status', "
              "'completed', 'created', 1700000000000 + i, 'updated', 1700000000500 + i) "
              "redis.call('ZADD', ARGV[1] .. ':idx:all', 1700000000000 + i, id) "
              "redis.call('ZADD', ARGV[1] .. ':idx:completed', 1700000000000 + i, id) end")
    subprocess.run(cli + ["EVAL", script, "0", key[:-len(":idx:all")], str(n)],
                   check=True, capture_output=True, timeout=30)


def dev_env():
    with open(os.path.join(HOME, "dev.env")) as f:
        return dict(line.split("=", 1) for line in f.read().split("\n") if "=" in line)


def register(brand, review_ms=600000):
    baton("start", "brand_registration", "--id", "brand-" + brand, "--input",
          json.dumps({"brand": brand, "use_case": "2fa", "review_timeout_ms": review_ms}))


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--disable-gpu", "--window-size=1400,1000",
              "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def wait(driver, what, cond, timeout=20):
    """WebDriverWait, failing with what was waited for."""
    try:
        return WebDriverWait(driver, timeout, ignored_exceptions=(
            StaleElementReferenceException,)).until(cond)
    except TimeoutException:
        shot(driver, "failed")
        raise AssertionError("timed out in the browser: " + what) from None


def shot(driver, name):
    driver.save_screenshot(os.path.join(OUT, name + ".png"))


def check_instance(driver, url, campaign):
    """The campaign's page: its timeline bars, then the review signal sent
    from the page, and the completion seen without a reload."""
    Select(driver.find_element(By.ID, "f-status")).select_by_value("running")
    driver.find_element(By.ID, "f-type").send_keys("campaign_registration")
    driver.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    wait(driver, "the campaign listed", lambda d: d.find_element(
        By.CSS_SELECTOR, 'tr.instance[data-id="%s"] a.id' % campaign))
    shot(driver, "instances")
    wait(driver, "the campaign's link clicked", lambda d: d.find_element(
        By.CSS_SELECTOR, 'tr.instance[data-id="%s"] a.id' % campaign).click() or True)
    # it waits for its review once its three carriers answered
    until("the campaign waits for its review", lambda: any(
        s["kind"] == "signal" and s["state"] == "waiting"
        for s in api(url, "instances/" + urllib.request.quote(campaign, safe=""))["steps"]))
    history = api(url, "instances/" + urllib.request.quote(campaign, safe="") + "/history")
    want = sum(1 for r in history if r["ev"] == "activity_scheduled")
    if want < 4:
        raise AssertionError("create_campaign and three submits expected, history has %d" % want)
    wait(driver, "%d activity bars" % want,
         lambda d: len(d.find_elements(By.CSS_SELECTOR, "rect.bar.activity")) == want)
    wait(driver, "the review wait's bar",
         lambda d: d.find_elements(By.CSS_SELECTOR, "rect.bar.wait"))
    shot(driver, "instance-waiting")
    driver.execute_script("window.__same_page = 1;")
    driver.find_element(By.ID, "signal-name").send_keys("review")
    driver.find_element(By.ID, "signal-payload").send_keys('{"decision": "approved"}')
    driver.find_element(By.ID, "signal-send").click()
    wait(driver, "the confirmation", lambda d: d.switch_to.alert).accept()
    try:
        wait(driver, "the campaign completed", lambda d: d.find_elements(
            By.CSS_SELECTOR, '#status [data-status="completed"]'), 30)
    except AssertionError as e:
        raise AssertionError("%s; the API says %s; its history ends %s" % (
            e, api(url, "instances/" + urllib.request.quote(campaign, safe="")),
            history_of(url, campaign)[-4:])) from None
    if driver.execute_script("return window.__same_page") != 1:
        raise AssertionError("the page was reloaded")
    # read in the page: the view redraws itself every second
    result = wait(driver, "its result", lambda d: d.execute_script(
        "const e = document.getElementById('result'); return e && e.textContent;"))
    if "approved" not in result:
        raise AssertionError("the result does not say approved: " + result)
    shot(driver, "instance-completed")
    return want


def check_timed_out_wait(driver, url):
    """A review that does not come in time (a lost webhook): its wait's bar
    is marked timed out, and the resend's bar follows it. Then the campaign
    is paused and resumed from its page."""
    register("lost", review_ms=500)
    campaign = "brand-lost/campaign"
    until("the review wait of lost times out and the resend starts",
          lambda: any(r["ev"] == "activity_scheduled" and r["name"] == "resend_to_carriers"
                      for r in history_of(url, campaign)))
    driver.get(url + "#/instance/" + urllib.request.quote(campaign, safe=""))
    wait(driver, "a wait bar marked timed out", lambda d: d.find_elements(
        By.CSS_SELECTOR, 'rect.bar.wait[data-outcome="timeout"]'))
    shot(driver, "instance-timed-out-wait")
    # paused and resumed from the page (each asks for a reason). Resumed, its
    # 500 ms waits run out again and it may fail (NoReview) before the page's
    # next refresh shows it running: the page shows it no longer paused, and
    # the history has the resume, sent by the page
    wait(driver, "pause clicked", lambda d: d.find_element(By.ID, "pause").click() or True)
    wait(driver, "the reason asked", lambda d: d.switch_to.alert).accept()
    wait(driver, "the campaign paused", lambda d: d.find_elements(
        By.CSS_SELECTOR, '#status [data-status="paused"]'), 30)
    wait(driver, "resume clicked", lambda d: d.find_element(By.ID, "resume").click() or True)
    wait(driver, "the reason asked", lambda d: d.switch_to.alert).accept()
    wait(driver, "the campaign no longer paused", lambda d: d.find_elements(
        By.CSS_SELECTOR, '#status [data-status]:not([data-status="paused"]):not([data-status=""])'), 30)
    until("the resume in the history, from the page", lambda: any(
        r["ev"] == "resumed" and r.get("by", "").startswith("baton ui")
        for r in history_of(url, campaign)))


def check_actions(driver, url):
    """The other forms: a rate set, a schedule paused, a dead letter
    redriven, each confirmed in its dialog."""
    driver.get(url + "#/limits")
    row = 'tr.rate[data-key="carriers"]'
    wait(driver, "the carriers' row", lambda d: d.find_element(By.CSS_SELECTOR, row).click() or True)
    value = driver.find_element(By.ID, "rate-value")
    value.clear()
    value.send_keys("7")
    driver.find_element(By.CSS_SELECTOR, "#rate-form button").click()
    wait(driver, "the confirmation", lambda d: d.switch_to.alert).accept()
    wait(driver, "the rate of carriers set to 7", lambda d: d.execute_script(
        "const r = document.querySelector(arguments[0]);"
        "return r && r.children[1].textContent === '7';", row))
    shot(driver, "limits")

    driver.get(url + "#/schedules")
    wait(driver, "pause clicked", lambda d: d.find_element(
        By.CSS_SELECTOR, 'tr.schedule[data-name="nightly"] button.verb-pause').click() or True)
    wait(driver, "the confirmation", lambda d: d.switch_to.alert).accept()
    wait(driver, "the schedule paused", lambda d: d.find_elements(
        By.CSS_SELECTOR, 'tr.schedule[data-name="nightly"] button.verb-resume'))
    shot(driver, "schedules")

    # a signal for an instance nobody has: dead-lettered by the worker
    env = dev_env()
    subprocess.run(["kcat", "-P", "-b", env["BATON_BROKERS"], "-t", "baton.events", "-K", "|"],
                   input='nobody|{"v":1,"type":"signal","id":"nobody","name":"x"}\n',
                   text=True, check=True, timeout=30)
    driver.get(url + "#/dlq")
    box = 'tr.letter input[type=checkbox]'
    wait(driver, "the dead letter listed and picked", lambda d: d.find_element(
        By.CSS_SELECTOR, box).click() or True, 30)
    shot(driver, "dlq")
    driver.find_element(By.ID, "redrive").click()
    wait(driver, "the confirmation", lambda d: d.switch_to.alert).accept()
    wait(driver, "the dead letter redriven", lambda d: d.execute_script(
        "const r = document.querySelector('tr.letter');"
        "return r && r.children[5].textContent === 'yes';"), 30)


def check_limits(driver, url):
    """The carriers' tokens, as the page shows them, move while campaigns
    take them."""
    driver.get(url + "#/limits")
    cell = 'tr.rate[data-key="carriers"] td.tokens'
    read = lambda d: d.execute_script(
        "const e = document.querySelector(arguments[0]); return e && e.textContent;", cell)
    # the tokens before the registrations: the bucket refilled since acme's
    seen = {wait(driver, "the carriers' rate limit", read)}
    for b in ("globex", "initech", "umbrella", "hooli", "stark", "wayne"):
        register(b)
    deadline = time.monotonic() + 30
    while len(seen) < 2 and time.monotonic() < deadline:
        v = read(driver)
        if v:
            seen.add(v)
        time.sleep(0.1)
    if len(seen) < 2:
        raise AssertionError("the tokens of carriers did not move: %s" % sorted(seen))
    return sorted(seen)


def main():
    os.makedirs(OUT, exist_ok=True)
    url = start_stack()
    register("acme")
    store_instances(10000)
    baton("schedule", "add", "nightly", "--cron", "0 3 * * *", "--workflow",
          "brand_registration", "--input", '{"brand":"nightly","use_case":"2fa"}')
    driver = browser()
    try:
        driver.get(url)
        wait(driver, "the instances", lambda d: len(d.find_elements(
            By.CSS_SELECTOR, "tr.instance")) == 50)
        # from the navigation's start to the first page of instances received
        timing = driver.execute_script(
            "const e = performance.getEntriesByType('resource')"
            ".filter(e => e.name.includes('/api/instances'))[0];"
            "return [e.startTime, e.responseEnd];")
        asked, loaded = timing
        # the answer itself must be quick; the whole load gets more room,
        # because a loaded CI machine slows chromium more than baton ui
        if loaded - asked > 500 or loaded > 3000:
            raise AssertionError("the first page of 10,000 instances: asked at %.0f ms, "
                                 "in at %.0f ms" % (asked, loaded))
        bars = check_instance(driver, url, "brand-acme/campaign")
        tokens = check_limits(driver, url)
        check_timed_out_wait(driver, url)
        check_actions(driver, url)
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        if errors:
            raise AssertionError("the console has errors: %s" % errors)
        print("ui.py: ok: 10,000 instances, first page asked at %.0f ms and in at %.0f ms, %d activity bars, tokens seen %s, screenshots in %s"
              % (asked, loaded, bars, tokens, OUT))
    finally:
        driver.quit()


def stop_all():
    for name, p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGINT if name == "dev" else signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


if __name__ == "__main__":
    ok = False
    reason = ""
    try:
        main()
        ok = True
    except (AssertionError, TimeoutException) as e:
        reason = "ui.py: FAILED: %s" % (e or "a wait timed out")
    except Exception as e:  # anything else from selenium: still stop what runs
        reason = "ui.py: FAILED: %r" % e
    finally:
        if not ok:
            # the reason again after the logs: a reader of the tail sees it
            print(reason, file=sys.stderr)
            for name, _ in procs:
                print("--- %s.log (end)\n%s" % (name, log_of(name)[-3000:]), file=sys.stderr)
            print(reason, file=sys.stderr)
        stop_all()
        shutil.rmtree(HOME, ignore_errors=True)
    sys.exit(0 if ok else 1)
