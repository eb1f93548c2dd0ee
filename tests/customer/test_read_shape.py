"""Customer reads are built straight from rows, without a model per row: they must still be exactly what
`CustomerRead` documents, in both views and for every kind of record (business, closed, erased)."""

from sqlalchemy import text

from services.customer.customers.models import CustomerRead
from services.customer.customers.scheduled import run_rotate_keys_cli
from tests.customer.factory import key, person


def _same_as_the_model(body: dict) -> None:
    assert set(body) == set(CustomerRead.model_fields)
    assert CustomerRead.model_validate(body).model_dump(mode="json") == body


def test_reads_by_id_lookup_and_page_have_the_documented_shape_in_both_views(api, actors):
    officer = actors.officer("BJ171")
    plain = actors.register(officer, **person(branch="BJ171", email=None, monthly_income="21000.5"))
    business = actors.register(officer, **person(
        branch="BJ171", kind="business", business_registration_no="91110000600037341L", assets="350000.00",
        address="1 Jianguo Rd", education="master", household_size=3, acquisition_channel="web"))
    closed = actors.register(officer, **person(branch="BJ171"))
    assert api.post(f"/customers/{closed['id']}/closure", json={"reason": "moved away"},
                    headers=officer).status_code == 200
    erased = actors.register(officer, **person(branch="BJ171"))
    assert api.post(f"/customers/{erased['id']}/erasure", headers=actors.admin()).status_code == 200

    for role, view in (("auditor", "full"), ("risk_analyst", "masked")):
        headers = actors.user(role)
        page = api.get("/customers", params={"branch": "BJ171", "limit": 10}, headers=headers).json()
        assert page["next_cursor"] is None and len(page["items"]) == 4
        for body in page["items"]:
            _same_as_the_model(body)
            assert body["pii_view"] == view
        by_id = {c["id"]: c for c in page["items"]}
        assert by_id[plain["id"]]["monthly_income"] == "21000.50" and by_id[plain["id"]]["email"] is None
        assert by_id[business["id"]]["assets"] == "350000.00" and by_id[business["id"]]["kind"] == "business"
        assert by_id[closed["id"]]["status"] == "closed" and by_id[closed["id"]]["closed_at"].endswith("Z")
        assert by_id[erased["id"]]["status"] == "erased" and by_id[erased["id"]]["national_id"] is None
        assert by_id[plain["id"]]["created_at"].endswith("Z")
        for customer in (plain, business, closed, erased):
            one = api.get(f"/customers/{customer['id']}", headers=headers)
            assert one.json() == by_id[customer["id"]] and one.headers["etag"] == f'"{one.json()["version"]}"'
        found = api.post("/customers/lookup", json={"phone": business["phone"]}, headers=headers).json()
        assert found == [by_id[business["id"]]]
    assert by_id[business["id"]]["phone"] == f"{business['phone'][:3]}******{business['phone'][-2:]}"


def test_writes_answer_with_the_same_shape_as_reads(api, actors):
    officer = actors.officer("BJ172")
    created = api.post("/customers", json=person(branch="BJ172"), headers={**officer, **key()})
    assert created.status_code == 201
    _same_as_the_model(created.json())
    again = api.get(f"/customers/{created.json()['id']}", headers=officer).json()
    assert again == created.json()


def test_a_full_view_page_logs_every_customer_shown_in_one_request(api, actors):
    officer = actors.officer("BJ173")
    ids = {actors.register(officer, **person(branch="BJ173"))["id"] for _ in range(3)}
    auditor = actors.user("auditor")
    shown = api.get("/customers", params={"branch": "BJ173"}, headers=auditor)
    assert {c["id"] for c in shown.json()["items"]} == ids
    log = [entry for entry in api.get("/access-log", params={"limit": 1000}, headers=auditor).json()["items"]
           if entry["customer_id"] in ids and entry["via"] == "list_customers"]
    assert sorted(entry["customer_id"] for entry in log) == sorted(ids)
    assert len({entry["request_id"] for entry in log}) == 1 and log[0]["request_id"]
    assert len({entry["actor"] for entry in log}) == 1 and log[0]["actor"].startswith("auditor.")
    assert all(entry["roles"] == ["auditor"] and entry["action"] == "full_view" for entry in log)


def test_listing_filters_combine_and_a_name_prefix_matches_literally(api, actors):
    branch = "BJ174"
    officer = actors.officer(branch)
    literal = actors.register(officer, **person(branch=branch, name="Ma_Li 100%"))
    actors.register(officer, **person(branch=branch, name="MaXLi 1000"))
    business = actors.register(officer, **person(branch=branch, name="Ma Holdings", kind="business",
                                                  business_registration_no="91110000600037341L"))
    analyst = actors.user("risk_analyst")

    def ids(**params):
        page = api.get("/customers", params={"branch": branch, **params}, headers=analyst)
        assert page.status_code == 200, page.text
        return [c["id"] for c in page.json()["items"]]

    assert ids(name_prefix="Ma_Li 100%") == [literal["id"]]
    assert ids(name_prefix="Ma_") == [literal["id"]]
    assert ids(kind="business") == [business["id"]]
    assert ids(kind="business", status="closed") == []
    assert ids(created_from=business["created_at"]) == [business["id"]]
    assert ids(created_to=business["created_at"], name_prefix="Ma") == [literal["id"], ids()[1]]
    # A partner sees only its referrals, whatever the filters ask for.
    partner = actors.user("partner")
    body = person(branch=branch)
    referred = api.post("/customers", json=body, headers={**partner, **key()}).json()
    mine = api.get("/customers", params={"branch": branch}, headers=partner).json()["items"]
    assert [c["id"] for c in mine] == [referred["id"]]
    assert api.post("/customers/lookup", json={"phone": literal["phone"]}, headers=partner).json() == []
    assert len(api.post("/customers/lookup", json={"phone": body["phone"]}, headers=partner).json()) == 1


def test_masked_reads_show_the_stored_masks_and_older_rows_get_theirs_from_the_rotation(suite, api, actors):
    officer = actors.officer("BJ175")
    body = person(branch="BJ175", email="wu.fang@example.com")
    customer = actors.register(officer, **body)
    with suite.database("customer").engine.begin() as conn:
        stored = conn.execute(text("SELECT national_id_masked, phone_masked, email_masked FROM customers "
                                   "WHERE id = :id"), {"id": customer["id"]}).one()
        assert tuple(stored) == (f"{'*' * 16}{body['national_id'][-2:]}",
                                 f"{body['phone'][:3]}******{body['phone'][-2:]}", "w***@example.com")
        # A row written before masks were stored: still masked correctly, from its decrypted value.
        conn.execute(text("UPDATE customers SET national_id_masked = NULL, phone_masked = NULL, email_masked = NULL "
                          "WHERE id = :id"), {"id": customer["id"]})
    analyst = actors.user("risk_analyst")
    masked = api.get(f"/customers/{customer['id']}", headers=analyst).json()
    assert (masked["national_id"], masked["phone"], masked["email"]) == tuple(stored)
    run_rotate_keys_cli(kernel=suite.kernel)
    with suite.database("customer").engine.connect() as conn:
        assert tuple(conn.execute(text("SELECT national_id_masked, phone_masked, email_masked FROM customers "
                                       "WHERE id = :id"), {"id": customer["id"]}).one()) == tuple(stored)
    assert api.get(f"/customers/{customer['id']}", headers=analyst).json() == masked

    assert api.post(f"/customers/{customer['id']}/erasure", headers=actors.admin()).status_code == 200
    with suite.database("customer").engine.connect() as conn:
        assert tuple(conn.execute(text("SELECT national_id_masked, phone_masked, email_masked FROM customers "
                                       "WHERE id = :id"), {"id": customer["id"]}).one()) == (None, None, None)
