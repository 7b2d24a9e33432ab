"""Checkpoint selection: the validation score as the test will embed, with mAP breaking saturated ties."""

import math

from torch import nn

from styleid.training.validation import Selection, selection_metric


def _row(epoch, score, mAP, score_center, map_center, gain_high=1.0):
    return {"epoch": epoch, "val_score": score, "val_map": mAP, "val_score_center": score_center, "val_map_center": map_center,
            "val_center_gain_low": -1.0, "val_center_gain_high": gain_high}


def _select(rows, metric="val_score"):
    best, model = Selection(metric), nn.Linear(1, 1)
    for row in rows:
        value = best.value(row)
        best.update(value > best.best_value, value, row["epoch"], model)
    return best.best_epoch


def test_selection_scores_each_epoch_as_the_test_will_embed_it():
    # epoch 1 is better uncentred, epoch 2 centred; centring is what auto will use (not vetoed), so epoch 2 is kept
    assert _select([_row(1, 540.0, 0.3, 600.0, 0.4), _row(2, 520.0, 0.3, 620.0, 0.4)]) == 2
    # where validation vetoes centring (its gain surely below zero), the plain score decides
    assert _select([_row(1, 640.0, 0.5, 600.0, 0.4, gain_high=-5.0), _row(2, 620.0, 0.5, 590.0, 0.4, gain_high=-5.0)]) == 1


def test_saturated_validation_recalls_still_tell_checkpoints_apart_by_map():
    rows = [_row(1, 1000.0, 0.80, 1000.0, 0.82), _row(2, 1000.0, 0.80, 1000.0, 0.90), _row(3, 1000.0, 0.95, 1000.0, 0.88)]
    assert _select(rows) == 2  # the centred mAP rises at epoch 2; epoch 3's plain mAP is not what the test uses
    assert _select(rows[:1] + [_row(2, 1000.0, 0.80, 1000.0, 0.82)]) == 1  # an exact tie keeps the earlier checkpoint


def test_other_selection_metrics_and_their_fallbacks():
    assert _select([{"epoch": 1, "val_loss": 2.0}, {"epoch": 2, "val_loss": 1.5}, {"epoch": 3, "val_loss": 1.7}], "val_loss") == 2
    assert _select([{"epoch": 1}, {"epoch": 2}], "last") == 2
    assert Selection("val_score").best_value == (-math.inf,)
    assert selection_metric("val_loss", has_val_people=True, has_holdout=False) == "val_score"
    assert selection_metric("val_score", has_val_people=False, has_holdout=True) == "last"
