"""The contract validator itself: it passes good exchanges and catches bad ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dev.airbyte_standin import STRIPE_CONNECTION_ID
from dev.airbyte_standin.contract import Exchange, check_exchange, spec_dir
from dev.airbyte_standin.job_model import Job
from dev.airbyte_standin.views import job_info_read, job_response


def exchange(path: str, body: object, status: int = 200, method: str = "POST", **kw) -> Exchange:
    request = kw.pop("request", {"id": 1} if method == "POST" else None)
    return Exchange(
        method=method,
        path=path,
        query=kw.pop("query", []),
        request_content_type="application/json",
        request_body=json.dumps(request).encode() if request is not None else b"",
        status=status,
        response_content_type=kw.pop("content_type", "application/json"),
        response_body=json.dumps(body).encode(),
    )


def sample_job() -> Job:
    return Job(
        id=1, connection_id=STRIPE_CONNECTION_ID, job_type="sync", created_at=1, updated_at=2
    )


def test_spec_dir_is_inside_the_checkout_or_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("AIRBYTE_API_SPEC_DIR", raising=False)
    repo = Path(__file__).resolve().parents[2]
    assert spec_dir().resolve().is_relative_to(repo)
    for name in ("config.yaml", "config-v1.6.0.yaml", "public-api.yaml", "api-problems.yaml"):
        assert (spec_dir() / name).is_file()
    monkeypatch.setenv("AIRBYTE_API_SPEC_DIR", str(tmp_path))
    assert spec_dir() == tmp_path


def test_real_job_info_passes() -> None:
    assert check_exchange(exchange("/api/v1/jobs/get", job_info_read(sample_job()))) == []


def test_job_info_without_id_is_caught() -> None:
    body = job_info_read(sample_job())
    del body["job"]["id"]
    [violation] = check_exchange(exchange("/api/v1/jobs/get", body))
    assert violation.side == "response"
    assert "'id' is a required property" in violation.message


def test_wrong_enum_value_is_caught() -> None:
    body = job_info_read(sample_job())
    body["job"]["status"] = "done"
    assert check_exchange(exchange("/api/v1/jobs/get", body))


def test_bad_request_body_is_caught() -> None:
    violations = check_exchange(
        exchange("/api/v1/jobs/get", job_info_read(sample_job()), request={"id": "one"})
    )
    assert [v.side for v in violations] == ["request"]


def test_public_job_response_and_missing_field() -> None:
    good = job_response(sample_job())
    path = "/api/public/v1/jobs/1"
    assert check_exchange(exchange(path, good, method="GET")) == []
    bad = {k: v for k, v in good.items() if k != "jobId"}
    assert check_exchange(exchange(path, bad, method="GET"))


def test_undeclared_409_must_be_a_problem_body() -> None:
    path = "/api/v1/connections/sync"
    request = {"connectionId": STRIPE_CONNECTION_ID}
    problem = {"status": 409, "type": "t", "title": "state-conflict", "detail": "d", "message": "m"}
    assert check_exchange(exchange(path, problem, status=409, request=request)) == []
    assert check_exchange(exchange(path, {"message": "m"}, status=409, request=request))


def test_public_errors_need_problem_content_type() -> None:
    problem = {"status": 404, "type": "t", "title": "resource-not-found"}
    path = "/api/public/v1/jobs/1"
    ok = exchange(path, problem, status=404, method="GET", content_type="application/problem+json")
    assert check_exchange(ok) == []
    assert check_exchange(exchange(path, problem, status=404, method="GET"))


def test_undeclared_success_path_is_caught() -> None:
    assert check_exchange(exchange("/api/v1/nonexistent", {}, request={}))


def test_workspaces_list_checked_against_v160() -> None:
    assert check_exchange(exchange("/api/v1/workspaces/list", {"workspaces": []}, request={})) == []
    assert check_exchange(exchange("/api/v1/workspaces/list", {}, request={}))
