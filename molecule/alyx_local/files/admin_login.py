"""A browser's admin login through nginx: GET the login page (CSRF cookie), POST the form with
the Origin a browser sends, then open the admin index. Prints PASS/FAIL lines; exit 1 on FAIL.
Environment: ALYX_URL (http://127.0.0.1:8081), ALYX_USER, ALYX_PASSWORD."""

import os
import sys

import requests

base = os.environ["ALYX_URL"]
failed = False


def report(ok, what):
    global failed
    failed = failed or not ok
    print(("PASS " if ok else "FAIL ") + what)


s = requests.Session()
r = s.get(base + "/admin/login/", timeout=60)
csrf = s.cookies.get("csrftoken")
report(r.status_code == 200 and bool(csrf), "GET /admin/login/ sets the CSRF cookie (%s)" % r.status_code)
r = s.post(base + "/admin/login/?next=/admin/",
           data={"username": os.environ["ALYX_USER"], "password": os.environ["ALYX_PASSWORD"],
                 "csrfmiddlewaretoken": csrf, "next": "/admin/"},
           headers={"Origin": base, "Referer": base + "/admin/login/"}, allow_redirects=False, timeout=60)
report(r.status_code == 302 and r.headers.get("Location") == "/admin/",
       "POST the login form with the browser's Origin: 302 to /admin/ (%s %s)" % (r.status_code, r.headers.get("Location")))
r = s.get(base + "/admin/", timeout=60)
report(r.status_code == 200 and "logout" in r.text.lower(), "GET /admin/ after login: the admin index (%s)" % r.status_code)
r = s.get(base + "/admin/misc/lab/", timeout=60)
report(r.status_code == 200 and "defaultlab" in r.text,
       "the admin lists the labs, with the one the first migration made (%s)" % r.status_code)
sys.exit(1 if failed else 0)
