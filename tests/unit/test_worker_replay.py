"""Replay: batches with context, pacing by the data's timestamps, and the HTTP path into a real app."""

import time
from datetime import timedelta

import pytest
import torch
import typer
from fastapi.testclient import TestClient

from plantwatch.bootstrap import Container
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.api.app import create_app
from plantwatch.entrypoints.cli.replay import Batch, HttpSender, batches, parse_speed, replay_frame
from plantwatch.settings import Settings
from tests.fakes import InMemoryAnomalyRepository
from tests.streaming_support import normal_frame, trained_pca

torch.set_num_threads(1)


def test_parse_speed():
    assert parse_speed("60x") == 60.0
    assert parse_speed("2.5") == 2.5
    assert parse_speed("MAX") is None
    for bad in ("fast", "0x", "-3x", "infx"):
        with pytest.raises(typer.BadParameter):
            parse_speed(bad)


def test_batches_cover_the_frame_once_and_carry_the_readings_before_them():
    frame = normal_frame(25)
    sent = list(batches(frame, size=10, context=4))
    assert [len(b.readings) for b in sent] == [10, 10, 5]
    assert [len(b.context) for b in sent] == [0, 4, 4]
    assert sent[1].context.values.index[-1] + timedelta(minutes=1) == sent[1].readings.values.index[0]
    assert [b.due_s for b in sent] == [9 * 60.0, 19 * 60.0, 24 * 60.0]


class RecordingSender:
    def __init__(self) -> None:
        self.sent_at: list[float] = []

    def send(self, module: Module, source: str, batch: Batch) -> None:
        self.sent_at.append(time.monotonic())


def test_replay_is_paced_by_timestamps_over_speed():
    frame = normal_frame(4)  # readings one minute apart: the last is due 180 s in
    sender = RecordingSender()
    report = replay_frame(frame, sender, batch_size=1, speed=600.0)  # 180 s / 600 = 0.3 s
    assert report.batches == 4 and report.readings == 4
    assert sender.sent_at[-1] - sender.sent_at[0] == pytest.approx(0.3, abs=0.1)
    unpaced = replay_frame(frame, RecordingSender(), batch_size=1, speed=None)
    assert unpaced.seconds < 0.1


def test_http_replay_scores_every_reading_after_the_first_window():
    model = trained_pca(Module.MACHINE, window=4)
    settings = Settings(database_url="sqlite://")
    repository = InMemoryAnomalyRepository()
    container = Container(settings=settings, repository=repository, models={Module.MACHINE: model})
    frame = normal_frame(40, module=Module.MACHINE)
    with TestClient(create_app(settings, container)) as client:
        sender = HttpSender(client, api_key=None)
        report = replay_frame(frame, sender, batch_size=7, speed=None, source="replayed")
    assert report.readings == 40
    # each batch's context completes the window, so only the file's first window - 1 readings go unscored
    assert len(repository.scores) == 40 - 3
    assert {point.source for point in repository.scores.values()} == {"replayed"}
