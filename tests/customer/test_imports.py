"""Bulk import: every bad row reported by line, good rows committed, re-runs never duplicate."""

import csv
import io
import json

from services.customer.imports import flows
from services.customer.imports.flows import run_import_cli
from tests.customer.factory import birth_date, key, national_id, person


def _csv(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["name", "date_of_birth", "national_id", "phone", "monthly_income",
                                             "branch"])
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in writer.fieldnames})
    return out.getvalue()


def _good(branch):
    return {k: v for k, v in person(branch=branch).items() if k != "email"}


def test_a_csv_import_reports_bad_rows_by_line_and_a_rerun_adds_nothing(api, actors):
    officer = actors.officer("IM01")
    good = [_good("IM01") for _ in range(3)]
    born = birth_date()
    bad_digit = national_id(born)
    bad_digit = bad_digit[:17] + ("0" if bad_digit[17] != "0" else "1")
    rows = [*good, {**_good("IM01"), "national_id": bad_digit, "date_of_birth": born.isoformat()},
            {**_good("IM01"), "phone": "123"}, {**_good("IM01"), "monthly_income": "-5"},
            {**_good("IM01"), "national_id": good[0]["national_id"], "date_of_birth": good[0]["date_of_birth"]},
            {**_good("IM01"), "branch": "SH01"}]
    upload = {"file": ("customers.csv", _csv(rows), "text/csv")}
    report = api.post("/customers/imports", files=upload, headers={**officer, **key()})
    assert report.status_code == 201, report.text
    body = report.json()
    assert (body["rows"], body["created"], body["already_present"], body["failed"]) == (8, 3, 0, 5)
    errors = {e["line"]: e for e in body["errors"]}
    assert errors[5]["field"] == "national_id" and "check digit" in errors[5]["reason"]
    assert errors[6]["field"] == "phone" and errors[7]["field"] == "monthly_income"
    assert "line 2" in errors[8]["reason"] and errors[9]["field"] == "branch"
    found = api.post("/customers/lookup", json={"phone": good[1]["phone"]}, headers=officer).json()
    assert len(found) == 1 and found[0]["branch"] == "IM01"

    again = api.post("/customers/imports", files={"file": ("customers.csv", _csv(good), "text/csv")},
                     headers={**officer, **key()}).json()
    assert (again["created"], again["already_present"], again["failed"]) == (0, 3, 0)


def test_json_lines_through_the_command_line_function(suite, api, actors, tmp_path):
    first, second = _good("IM02"), _good("IM02")
    path = tmp_path / "customers.jsonl"
    path.write_text("\n".join([json.dumps(first), "{not json", json.dumps({**second, "branch": None}), "[1, 2]"]))
    report = run_import_cli(path, branch="IM02", batch_size=1, kernel=suite.kernel, progress=False)
    assert (report.rows, report.created, report.failed) == (4, 2, 2)
    assert [(e.line, e.reason) for e in report.errors] == [(2, "not valid JSON"), (4, "not a JSON object")]
    assert run_import_cli(path, branch="IM02", kernel=suite.kernel, progress=False).already_present == 2
    found = api.post("/customers/lookup", json={"national_id": second["national_id"]}, headers=actors.admin()).json()
    assert found[0]["branch"] == "IM02" and found[0]["created_by"] == "cli-import"


def test_an_upload_that_is_not_text_is_a_422(api, actors):
    response = api.post("/customers/imports", files={"file": ("x.csv", b"\xff\xfe\x00bad", "text/csv")},
                        headers={**actors.admin(), **key()})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body.file"


def test_a_person_registered_while_the_batch_was_checked_is_counted_once(suite, api, actors, tmp_path, monkeypatch):
    officer = actors.officer("IM03")
    rows = [_good("IM03") for _ in range(3)]
    twin = rows[1]
    path = tmp_path / "customers.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows))
    real, raced = flows.customer_row, []

    def racing(vault, command, principal, branch):
        # After the batch's duplicate check, before its insert: a branch registers the same person.
        if command.national_id == twin["national_id"] and not raced:
            raced.append(api.post("/customers", json=twin, headers={**officer, **key()}).status_code)
        return real(vault, command, principal, branch)

    monkeypatch.setattr(flows, "customer_row", racing)
    report = run_import_cli(path, kernel=suite.kernel, progress=False)
    assert raced == [201]
    assert (report.created, report.already_present, report.failed) == (2, 1, 0)
    for row in rows:
        found = api.post("/customers/lookup", json={"national_id": row["national_id"]}, headers=officer).json()
        assert len(found) == 1
