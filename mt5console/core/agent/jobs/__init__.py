"""Platform jobs: parsing (model), what each type does (handlers), exactly-once execution (executor)
and the deal-history search that makes a resumed trade safe (trade_recovery)."""

from mt5console.core.agent.jobs.executor import JobExecutor, JobOutcome, result_path
from mt5console.core.agent.jobs.handlers import JobFailure, JobHandlers, build_handlers
from mt5console.core.agent.jobs.model import JOB_TYPES, JobInputError, parse_job

__all__ = [
    "JOB_TYPES",
    "JobExecutor",
    "JobFailure",
    "JobHandlers",
    "JobInputError",
    "JobOutcome",
    "build_handlers",
    "parse_job",
    "result_path",
]
