"""A draw held by the bias check: staff see it, an admin publishes its record after review."""

import datetime

from helpers import (
    CREATED,
    DRAW_ID,
    ENGLISH,
    POOL,
    csrf_token,
    publish_slots,
    register_people,
    run_the_draw,
    schedule,
    sign_in,
)

from queue_service.draws import DrawState


def post(client, path: str, token_page: str):
    return client.post(path, data={"csrf_token": csrf_token(client, token_page)}, headers=ENGLISH)


def test_an_admin_sees_a_held_draw_and_publishes_it_after_review(store, reference_data, app, staff):  # noqa: F811
    store.save_schedule(schedule())
    publish_slots(store, 4)
    register_people(store, 6, CREATED + datetime.timedelta(days=1))
    run_the_draw(store)
    store.update_draw_state(POOL, DRAW_ID, None, DrawState.PUBLISHED, {"state": "held"})  # as a failed bias check leaves it
    assert client_seed(app, DRAW_ID) is None

    agent = sign_in(app, "agent01")
    assert "is held for review" in agent.get("/staff/p/01/", headers=ENGLISH).get_data(as_text=True)
    page = agent.get("/staff/p/01/schedules/first_request", headers=ENGLISH).get_data(as_text=True)
    assert "is held" in page and "publish this draw" not in page  # agents see it, admins decide
    refused = post(agent, f"/staff/p/01/schedules/first_request/draws/{DRAW_ID}/release", "/staff/p/01/sites")
    assert refused.status_code == 403 and store.draw(POOL, DRAW_ID).state is DrawState.HELD

    admin = sign_in(app, "admin01")
    page = "/staff/p/01/schedules/first_request"
    assert "publish this draw" in admin.get(page, headers=ENGLISH).get_data(as_text=True)
    answer = post(admin, f"{page}/draws/{DRAW_ID}/release", page)
    assert answer.status_code == 302 and store.draw(POOL, DRAW_ID).state is DrawState.PUBLISHED
    assert store.draw(POOL, DRAW_ID).released_by == staff["admin01"].id
    assert client_seed(app, DRAW_ID) is not None
    again = post(admin, f"{page}/draws/{DRAW_ID}/release", page)
    assert again.status_code == 409


def client_seed(app, draw_id: str):
    return app.test_client().get(f"/api/v1/draws/{draw_id}/record").get_json()["seed"]
