"""The Configuration API's job answers (``JobInfoRead``, ``JobInfoLightRead``, job lists):
their raw shapes and their reading into ``AirbyteJob``, attempts included."""

from __future__ import annotations

from typing import Any

from pydantic import NonNegativeInt

from plugins.airbyte_client.api.base import Contract, epoch, parse
from plugins.airbyte_client.errors import AirbyteResponseError
from plugins.airbyte_client.models import AirbyteJob, JobStatus, JobType, StreamStats
from plugins.airbyte_client.transport import ApiRequest


class ConfigAggregatedStats(Contract):
    recordsEmitted: NonNegativeInt = 0
    bytesEmitted: NonNegativeInt = 0
    recordsCommitted: NonNegativeInt | None = None
    bytesCommitted: NonNegativeInt | None = None

    def figures(self) -> tuple[int, int]:
        """``(rows, bytes)``: committed where reported, else emitted."""
        rows = self.recordsCommitted if self.recordsCommitted is not None else self.recordsEmitted
        size = self.bytesCommitted if self.bytesCommitted is not None else self.bytesEmitted
        return rows, size


class ConfigStreamStats(ConfigAggregatedStats):
    streamName: str
    streamNamespace: str | None = None


class ConfigFailure(Contract):
    externalMessage: str | None = None
    failureOrigin: str | None = None
    failureType: str | None = None


class ConfigFailureSummary(Contract):
    failures: list[ConfigFailure]


class ConfigAttemptStreamStats(Contract):
    streamName: str
    streamNamespace: str | None = None
    stats: ConfigAggregatedStats | None = None


class ConfigAttempt(Contract):
    id: int
    status: str
    createdAt: int
    updatedAt: int
    endedAt: int | None = None
    failureSummary: ConfigFailureSummary | None = None
    streamStats: list[ConfigAttemptStreamStats] | None = None


class ConfigAttemptInfo(Contract):
    attempt: ConfigAttempt


class ConfigJob(Contract):
    id: int
    configType: str
    configId: str
    createdAt: int
    updatedAt: int
    startedAt: int | None = None
    status: JobStatus
    aggregatedStats: ConfigAggregatedStats | None = None
    streamAggregatedStats: list[ConfigStreamStats] | None = None


class ConfigJobInfo(Contract):
    job: ConfigJob
    #: Validated lazily, newest first and at most ``MAX_ATTEMPTS_READ`` (``_newest_attempts``).
    attempts: list[Any]


class ConfigJobInfoLight(Contract):
    job: ConfigJob


class ConfigJobWithAttempts(Contract):
    job: ConfigJob
    attempts: list[Any] | None = None


class ConfigJobList(Contract):
    jobs: list[ConfigJobWithAttempts]


CONFIG_TYPE_TO_JOB_TYPE = {
    "sync": JobType.SYNC,
    "reset_connection": JobType.RESET,
    "clear": JobType.CLEAR,
    "refresh": JobType.REFRESH,
}
JOB_TYPE_TO_CONFIG_TYPE = {v: k for k, v in CONFIG_TYPE_TO_JOB_TYPE.items()}


#: Attempts of a job answer that are read: the newest. A job retried thousands of times (an
#: answer of megabytes) must not cost a second of parsing; the count is of all of them.
MAX_ATTEMPTS_READ = 20


def _newest_attempts(
    attempts: list[Any], model: type[ConfigAttempt | ConfigAttemptInfo], request: ApiRequest
) -> list[ConfigAttempt]:
    """The newest ``MAX_ATTEMPTS_READ`` attempts of an answer, validated, oldest first."""
    read = [parse(model, a, request) for a in attempts[-MAX_ATTEMPTS_READ:]]
    return [a.attempt if isinstance(a, ConfigAttemptInfo) else a for a in read]


def _config_job(
    job: ConfigJob, attempts: list[ConfigAttempt], attempt_count: int | None
) -> AirbyteJob:
    """The job of an answer; ``attempt_count`` None where the answer has no attempts."""
    job_type = CONFIG_TYPE_TO_JOB_TYPE.get(job.configType)
    if job_type is None:
        raise AirbyteResponseError(
            f"Airbyte job {job.id} has unexpected configType {job.configType!r}"
        )
    rows, bytes_ = job.aggregatedStats.figures() if job.aggregatedStats else (0, 0)
    streams = tuple(
        StreamStats(name=s.streamName, namespace=s.streamNamespace, records=r, bytes=b)
        for s in job.streamAggregatedStats or ()
        for r, b in [s.figures()]
    )
    if job.streamAggregatedStats is None:
        streams = _attempt_stream_stats(attempts)
    failure = next(
        (
            f.externalMessage
            for a in reversed(attempts)
            if a.failureSummary
            for f in a.failureSummary.failures
            if f.externalMessage
        ),
        None,
    )
    start = job.startedAt or job.createdAt
    return AirbyteJob(
        job_id=job.id,
        connection_id=job.configId,
        job_type=job_type,
        status=job.status,
        records=rows,
        bytes=bytes_,
        created_at=epoch(job.createdAt),
        updated_at=epoch(job.updatedAt),
        duration_seconds=float(max(job.updatedAt - start, 0)),
        attempts=attempt_count,
        failure_reason=failure,
        streams=streams,
    )


def _attempt_stream_stats(attempts: list[ConfigAttempt]) -> tuple[StreamStats, ...]:
    """Per-stream figures summed over the attempts read (servers without
    ``streamAggregatedStats``; at most ``MAX_ATTEMPTS_READ``, the newest).

    Each attempt commits its own records, so the job's committed figures are the sum.
    """
    totals: dict[tuple[str, str | None], tuple[int, int]] = {}
    for attempt in attempts:
        for s in attempt.streamStats or ():
            if s.stats is None:
                continue
            rows, size = s.stats.figures()
            old_rows, old_bytes = totals.get((s.streamName, s.streamNamespace), (0, 0))
            totals[(s.streamName, s.streamNamespace)] = (old_rows + rows, old_bytes + size)
    return tuple(
        StreamStats(name=name, namespace=namespace, records=rows, bytes=size)
        for (name, namespace), (rows, size) in totals.items()
    )


def parse_job_info(body: Any, request: ApiRequest) -> AirbyteJob:
    """A ``/jobs/get`` answer: the job with its newest attempts (failure reason)."""
    info = parse(ConfigJobInfo, body, request)
    attempts = _newest_attempts(info.attempts, ConfigAttemptInfo, request)
    return _config_job(info.job, attempts, len(info.attempts))


def parse_job_light(body: Any, request: ApiRequest) -> AirbyteJob:
    """A ``/jobs/get_light`` answer: the job without attempts."""
    return _config_job(parse(ConfigJobInfoLight, body, request).job, [], None)


def parse_job_list(body: Any, request: ApiRequest) -> list[AirbyteJob]:
    """A ``/jobs/list`` answer: each job with its newest attempts."""
    return [
        _config_job(
            j.job,
            _newest_attempts(j.attempts or [], ConfigAttempt, request),
            len(j.attempts or []),
        )
        for j in parse(ConfigJobList, body, request).jobs
    ]
