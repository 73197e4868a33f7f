"""The causal TCN, its loss and its optimiser: causality, receptive field, bounds, streaming state,
loss terms, AdamW against PyTorch's."""
import subprocess
import sys

import pytest
import torch

from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "2_architecture_training"))
from models import PRESETS, TCNConfig, VoiceToFaceTCN  # noqa: E402
from models.loss import TERMS, AudioBlendshapeLoss  # noqa: E402
from models.optimizer import AdamW  # noqa: E402
from voiceface.constants import BLENDSHAPE_NAMES  # noqa: E402

CONFIGS = {"default": PRESETS["default"], "tiny": PRESETS["tiny"],
           "clamp": TCNConfig(channels=16, dilations=(1, 2), dropout=0.0, skip_taps=4, blendshape_output="clamp"),
           "kernel_1": TCNConfig(channels=16, kernel_size=1, dilations=(1, 2), dropout=0.0),
           "kernel_5": TCNConfig(channels=16, kernel_size=5, dilations=(1, 3, 9), dropout=0.0),
           "linear_skip": TCNConfig(channels=16, kernel_size=3, dilations=(1, 2), dropout=0.0, skip_taps=8, skip_step=3),
           # the design note's alternative, measured against the TCN: a GRU in the blocks' place
           "gru": TCNConfig(channels=16, dilations=(), backbone="gru", recurrent_layers=2, dropout=0.0, skip_taps=4)}


def trained_like(config: TCNConfig, seed: int = 0) -> VoiceToFaceTCN:
    """A model with random (not zero) residual branches, in double precision, in eval mode."""
    torch.manual_seed(seed)
    model = VoiceToFaceTCN(config).double().eval()
    with torch.no_grad():
        for block in model.blocks:
            block.contract.weight.normal_(0, 0.05)
        if model.skip is not None:
            model.skip.weight.normal_(0, 0.05)
    return model


@pytest.mark.parametrize("name", list(CONFIGS))
def test_changing_input_at_t_never_changes_earlier_outputs(name):
    model = trained_like(CONFIGS[name])
    x = torch.randn(2, 300, 80, dtype=torch.float64)
    changed = x.clone()
    t = 137
    changed[:, t:] = torch.randn_like(changed[:, t:])
    with torch.no_grad():
        a, b = model(x), model(changed)
    assert torch.equal(a[:, :t], b[:, :t])
    assert not torch.equal(a[:, t], b[:, t])


@pytest.mark.parametrize("name", ["kernel_1", "kernel_5", "tiny", "linear_skip"])
def test_receptive_field_is_exact(name):
    model = trained_like(CONFIGS[name])
    rf = model.receptive_field
    config = CONFIGS[name]
    assert rf == max(1 + (config.kernel_size - 1) * sum(config.dilations), 1 + (config.skip_taps - 1) * config.skip_step)
    length = rf + 50
    x = torch.randn(1, length, 80, dtype=torch.float64)
    changed = x.clone()
    t = 10
    changed[:, t] += 1.0
    with torch.no_grad():
        a, b = model(x), model(changed)
    assert not torch.equal(a[:, t + rf - 1], b[:, t + rf - 1])     # still reached
    assert torch.equal(a[:, t + rf:], b[:, t + rf:])                 # out of reach from here on


def test_the_gru_has_no_fixed_reach_and_an_unknown_backbone_is_refused():
    """(Its causality and streaming are in the parametrised tests: CONFIGS["gru"].)"""
    assert trained_like(CONFIGS["gru"]).receptive_field is None and PRESETS["gru"].receptive_field is None
    assert len(trained_like(CONFIGS["gru"]).stream_state()) == 2     # the hidden state, then the skip's past
    with pytest.raises(ValueError, match="backbone"):
        VoiceToFaceTCN(TCNConfig(backbone="lstm"))


def test_default_preset_reaches_ten_seconds():
    assert PRESETS["default"].receptive_field == 1023
    # the blocks' left contexts, then the linear skip's: 15 taps back, 2 frames apart
    assert VoiceToFaceTCN(PRESETS["default"]).left_contexts == [2, 4, 8, 16, 32, 64, 128, 256, 256, 256, 30]


@pytest.mark.parametrize("name", ["tiny", "clamp", "gru"])
def test_outputs_stay_in_bounds_for_any_input(name):
    model = trained_like(CONFIGS[name])
    with torch.no_grad():
        out = model(100 * torch.randn(3, 400, 80, dtype=torch.float64))
    assert out[..., :52].min() >= 0 and out[..., :52].max() <= 1
    assert out[..., 52:].abs().max() <= CONFIGS[name].pose_bound


def test_the_clamped_output_is_linear_in_training_so_its_gradient_never_fades():
    model = trained_like(CONFIGS["clamp"])
    x = 100 * torch.randn(1, 200, 80, dtype=torch.float64)
    blocks, linear, _ = model.path_logits(x)
    logits = (blocks + linear)[..., :52]
    assert logits.min() < -1 and logits.max() > 2                  # far outside [0, 1], where a sigmoid is flat
    model.train()
    out = model(x)
    assert torch.allclose(out[..., :52], logits)                  # in training: the logit itself
    out[..., :52].sum().backward()
    assert model.head.bias.grad[:52].abs().min() > 0.5 * x.shape[1]   # every shape's gradient whole, none faded


@pytest.mark.parametrize("name", ["clamp", "linear_skip"])
def test_the_linear_skip_started_as_a_ridge_fit_outputs_what_the_ridge_predicts(name):
    """A linear output then says what the ridge says; a sigmoid's logit does (fitted on logits)."""
    import numpy as np
    from voiceface.ridge import RidgeBaseline
    rng = np.random.default_rng(3)
    inputs = [rng.normal(size=(400, 80)) for _ in range(3)]
    targets = [np.clip(0.3 + 0.1 * x[:, :52] + 0.05 * np.roll(x[:, 1:53], 2, axis=0), 0, 1) for x in inputs]
    masks = [np.ones(400, bool) for _ in inputs]
    model = VoiceToFaceTCN(CONFIGS[name]).double().train()
    ridge = RidgeBaseline.fit(inputs, targets, masks, lookahead=2, offsets=np.array(model.skip.offsets))
    taps, step = model.config.skip_taps, model.config.skip_step
    assert list(ridge.offsets) == [-step * j for j in reversed(range(taps))]      # oldest first
    model.set_linear_reader(*ridge.per_frame_weights())
    with torch.no_grad():
        model.head.weight.zero_()                                   # the blocks add nothing yet
        out = model(torch.from_numpy(inputs[0])[None])[0, :, :52].numpy()
    if name == "linear_skip":                                       # the sigmoid's: compare logits
        out = np.log(out / (1 - out))
    stacked = inputs[0][np.clip(np.arange(400)[:, None] + ridge.offsets[None], 0, 399)].reshape(400, -1)
    expected = ((stacked - ridge.mean) / ridge.std) @ ridge.weights[:-1] + ridge.weights[-1]     # unclipped
    left = model.skip.left_context                                  # before it the skip reads zeros, ridge frame 0
    assert np.allclose(out[left:], expected[left:], atol=1e-7)
    with pytest.raises(ValueError, match="linear skip"):
        VoiceToFaceTCN(CONFIGS["kernel_5"]).set_linear_reader(*ridge.per_frame_weights())


@pytest.mark.parametrize("name", ["kernel_5", "linear_skip", "gru"])
@pytest.mark.parametrize("chunk", [1, 7, 160, 333])
def test_streaming_state_gives_the_whole_sequence_output(chunk, name):
    model = trained_like(CONFIGS[name])
    x = torch.randn(1, 700, 80, dtype=torch.float64)
    with torch.no_grad():
        whole = model(x)
        state, parts = model.stream_state(), []
        for start in range(0, 700, chunk):
            out, state = model(x[:, start:start + chunk], state)
            parts.append(out)
    assert torch.allclose(torch.cat(parts, dim=1), whole, atol=1e-12)


def make_batch(seed=0, frames=50):
    generator = torch.Generator().manual_seed(seed)
    target = torch.rand(2, frames, 59, generator=generator)
    target[..., 52:55] = target[..., 52:55] * 1.6 - 0.8          # translations within +-1
    mask = (torch.rand(2, frames, generator=generator) > 0.2).float()
    vad = (torch.rand(2, frames, generator=generator) > 0.5).float()
    return target, mask, vad


def test_each_loss_term_is_nonnegative_and_zero_for_a_perfect_prediction():
    loss = AudioBlendshapeLoss({t: 1.0 for t in TERMS}, BLENDSHAPE_NAMES)
    target, mask, vad = make_batch()
    prediction = target + 0.1 * torch.randn_like(target)
    prediction[..., 52:55] = 1.5                                   # beyond the pose bound
    sums, counts = zip(*loss(prediction, target, mask, vad).values())
    total, means = loss.combine(dict(zip(TERMS, sums)), dict(zip(TERMS, counts)))
    assert all(float(means[t]) > 0 for t in TERMS)
    sums, counts = zip(*loss(target, target, mask, vad).values())
    total, means = loss.combine(dict(zip(TERMS, sums)), dict(zip(TERMS, counts)))
    assert all(float(means[t]) == 0 for t in TERMS if t != "correlation") and float(means["correlation"]) < 1e-6


def test_the_correlation_term_ignores_level_and_scale_and_charges_a_late_mouth():
    """--correlation-weight: 1 - r per window and mouth shape. A prediction that is the target at
    another level and scale costs nothing; the same track 100 ms late costs; a window whose
    target does not move is not counted."""
    loss = AudioBlendshapeLoss({t: float(t == "correlation") for t in TERMS}, BLENDSHAPE_NAMES)
    target, mask, vad = make_batch(seed=3)
    t = torch.arange(target.shape[1], dtype=torch.float32) / 100
    scale = torch.rand(1, 1, 52, generator=torch.Generator().manual_seed(3))    # not the global RNG: order-free
    target[..., :52] = 0.3 + 0.2 * torch.sin(2 * torch.pi * 3 * t)[None, :, None] * scale
    jaw = BLENDSHAPE_NAMES.index("jawOpen")

    def term(prediction, target):
        total, count = loss(prediction, target, mask, vad)["correlation"]
        return float(total / count), int(count)

    rescaled = target.clone()
    rescaled[..., :52] = 0.1 + 0.5 * target[..., :52]
    assert term(rescaled, target)[0] < 1e-5
    late = target.clone()
    late[..., :52] = torch.roll(target[..., :52], 10, dims=1)
    assert term(late, target)[0] > 0.3
    still = target.clone()
    still[0, :, jaw] = 0.2
    assert term(target, still)[1] == term(target, target)[1] - 1


def test_masked_frames_contribute_nothing():
    loss = AudioBlendshapeLoss({t: 1.0 for t in TERMS}, BLENDSHAPE_NAMES)
    target, mask, vad = make_batch(seed=1)
    prediction = target + 0.05 * torch.randn_like(target)
    before = loss(prediction, target, mask, vad)
    wild = prediction.clone()
    wild[mask == 0] = torch.rand_like(wild[mask == 0]) * 3      # anything at all where masked
    after = loss(wild, target, mask, vad)
    for term in TERMS:
        assert torch.allclose(before[term][0], after[term][0]) and torch.equal(before[term][1], after[term][1])


def test_with_shape_spreads_an_error_counts_by_how_much_its_shape_moves():
    """--shape-spread: the same error on a shape that moves little costs more than on one that moves
    a lot, in proportion to their spreads, and the mean spread keeps the loss's unit."""
    spread = torch.full((52,), 0.1)
    funnel, jaw = BLENDSHAPE_NAMES.index("mouthFunnel"), BLENDSHAPE_NAMES.index("jawOpen")
    spread[funnel] = 0.05
    weights = {t: float(t == "base") for t in TERMS}
    plain, scaled = (AudioBlendshapeLoss(weights, BLENDSHAPE_NAMES, beta=1e-6, shape_spread=s) for s in (None, spread))
    target, mask, vad = make_batch(seed=2)
    costs = {}
    for shape in (funnel, jaw):
        prediction = target.clone()
        prediction[..., shape] += 0.2
        costs[shape] = [float(loss(prediction, target, mask, vad)["base"][0]) for loss in (plain, scaled)]
    assert costs[funnel][0] == pytest.approx(costs[jaw][0])               # without spreads: the same
    assert costs[funnel][1] == pytest.approx(2 * costs[jaw][1], rel=1e-3)  # with: twice, as it moves half as much
    assert costs[jaw][1] == pytest.approx(costs[jaw][0] * float(spread.mean()) / 0.1, rel=1e-3)


def test_the_gru_runs_in_onnx_whole_and_one_frame_at_a_time(tmp_path):
    """The GRU preset through both exports inference uses: the whole-sequence file and the
    stateful one-frame step of live streaming (its hidden state carried as an ONNX input)."""
    import numpy as np
    import onnxruntime
    from voiceface.engine import export_onnx, onnx_one_frame_step
    model = trained_like(CONFIGS["gru"]).float()
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(2, 120, 80)).astype(np.float32))
    with torch.no_grad():
        whole = model(x)
    export_onnx(model, tmp_path / "gru.onnx")                # exported at batch 1 and 200 frames
    got = onnxruntime.InferenceSession(str(tmp_path / "gru.onnx")).run(None, {"mel": x.numpy()})[0]
    assert np.abs(got - whole.numpy()).max() <= 1e-5
    x, whole = x[:1], whole[:1]
    step, state, parts = onnx_one_frame_step(model), model.stream_state(), []
    for t in range(x.shape[1]):
        out, state = step(x[:, t:t + 1], state)
        parts.append(out)
    assert torch.allclose(torch.cat(parts, dim=1), whole, atol=1e-5)


@pytest.mark.parametrize("name, input_mode, formants", [("gru", "fixed", False), ("linear_skip", "level", False),
                                                        ("linear_skip", "level", True)])
def test_the_stream_onnx_step_equals_the_front_end_and_model_in_python(name, input_mode, formants, tmp_path):
    """The whole step in ONNX (front-end, voice activity, input normalisation, the formant channels
    of a --formants model, the model with its state, the output in real units) against voiceface's
    Python on 12 s of digital silence, room noise and speech at two levels (and the same with samples
    that are not numbers), for both input modes and both backbones."""
    from dataclasses import replace

    from voiceface.lpc import formant_config
    from voiceface.stream_onnx import compare_with_engine, export_stream_onnx
    model = trained_like(replace(CONFIGS[name], n_inputs=96) if formants else CONFIGS[name]).float()
    checkpoint = {"input_mode": input_mode, "formants": formant_config() if formants else None}
    export_stream_onnx(model, checkpoint, None, tmp_path / "step.onnx")
    # float32 throughout, the formant channels' linear prediction too: runtimes without float64
    # (OpenVINO, Sentis on a GPU) run it as they are
    import onnx
    graph = onnx.shape_inference.infer_shapes(onnx.load(tmp_path / "step.onnx")).graph
    double = onnx.TensorProto.DOUBLE
    assert not [t.name for t in graph.initializer if t.data_type == double]
    assert not [v.name for v in [*graph.value_info, *graph.input, *graph.output] if v.type.tensor_type.elem_type == double]
    assert not [n.name for n in graph.node if n.op_type == "Cast" and any(a.i == double for a in n.attribute)]
    check = compare_with_engine(tmp_path / "step.onnx", model, checkpoint)
    assert check["voice_agrees"] == check["frames"] == 1200
    # float32 in the graph against NumPy's float64 level arithmetic: within what --export-onnx accepts
    # (stream_onnx.ENGINE_LIMITS; thirty times that for the formant channels' float32 linear prediction)
    assert check["agrees"] and check["blendshapes"] <= 1e-4, check
    # samples that are not numbers (a glitching driver, a bad float file) are silence to both, and the
    # stream goes on: before, one NaN made every state after it NaN, the face with it, for good
    import numpy as np
    from voiceface.stream_onnx import check_audio
    glitched = check_audio()
    glitched[[30000, 48000, 48001, 80000]] = [np.nan, np.inf, -np.inf, np.nan]
    check = compare_with_engine(tmp_path / "step.onnx", model, checkpoint, glitched)
    assert check["voice_agrees"] == check["frames"] == 1200
    assert check["agrees"] and check["blendshapes"] <= 1e-4, check
    # a second runtime, ONNX's own reference evaluator (the standard's operators written in NumPy), gives
    # ONNX Runtime's numbers on a half-second stream of room noise into speech: nothing runtime-specific;
    import onnxruntime
    from onnx.reference import ReferenceEvaluator
    reference = ReferenceEvaluator(str(tmp_path / "step.onnx"))
    session = onnxruntime.InferenceSession(str(tmp_path / "step.onnx"))
    # and a third, written apart from both: tract (Sonos, in Rust; what a Rust or embedded caller runs),
    # which has no Equal on bools and no CumSum on int64: the graph has to keep to what every runtime has
    import tract
    rust = tract.onnx().load(str(tmp_path / "step.onnx")).into_model().into_runnable()
    sound = check_audio()[int(1.9 * 16000):int(2.4 * 16000)]
    ours = theirs = in_rust = np.zeros((1, session.get_inputs()[1].shape[1]), np.float32)
    faces = []
    for hop in sound.reshape(-1, 160):
        *face, ours = session.run(None, {"audio": hop[None], "state": ours})
        *other, theirs = reference.run(None, {"audio": hop[None], "state": theirs})
        *from_rust, in_rust = (value.to_numpy() for value in rust.run([hop[None], in_rust]))
        assert max(float(np.abs(a - b).max()) for a, b in zip(face, other)) <= 1e-5
        assert max(float(np.abs(a - b).max()) for a, b in zip(face, from_rust)) <= 1e-5
        faces.append(face[0])
    # the state lives with the caller, so one session serves several voices at once: the same half
    # second interleaved hop by hop with another stream gives the same faces
    first = second = np.zeros_like(ours)
    for hop, other, face in zip(sound.reshape(-1, 160), check_audio()[:len(sound)].reshape(-1, 160), faces):
        shapes, *_, first = session.run(None, {"audio": hop[None], "state": first})
        *_, second = session.run(None, {"audio": other[None], "state": second})
        assert np.array_equal(shapes, face)


def test_the_stream_onnx_line_spectral_frequencies_in_float32_follow_lpc_on_loud_vowels(monkeypatch):
    """Loud vowels of sharp formants (bandwidths 30-80 Hz) span a wide range of power, where linear
    prediction is ill-conditioned: the graph's float32 Levinson-Durbin lands within 5e-4 rad of
    lpc.py's float64 one with lpc.LEVINSON_WHITE_NOISE, and with the floor of before (1e-9) up to
    0.9 rad off, the reason for the floor."""
    import numpy as np
    import voiceface.lpc as lpc
    import voiceface.stream_onnx as stream_onnx
    from voiceface.audio import POWER_SCALE, WINDOW_32
    from voiceface.synthetic import pulse_vowel

    def vowel(f0, formants, bandwidths):                # ten frames' power spectra from 0.125 s on
        frames = np.lib.stride_tricks.sliding_window_view(pulse_vowel(f0, formants, bandwidths, 0.5), 400)[2000::160][:10]
        spectrum = np.fft.rfft(frames.astype(np.float32) * WINDOW_32, 512, axis=1)
        return ((spectrum.real ** 2 + spectrum.imag ** 2) * POWER_SCALE).astype(np.float32)

    powers = np.concatenate([vowel(100, (700, 1220, 2600), (40, 60, 80)), vowel(120, (300, 2300, 3000), (30, 50, 60)),
                             vowel(220, (850, 1600, 2800, 3600), (30, 40, 50, 60))])
    step = stream_onnx.stream_step_module(trained_like(TCNConfig(channels=16, dilations=(1,), n_inputs=96)).float(),
                                          "level")

    def furthest() -> float:
        with torch.inference_mode():
            graph = np.concatenate([step.line_spectral_frequencies(torch.from_numpy(p[None])).numpy() for p in powers])
        return float(np.abs(graph - lpc.lsf_from_power(powers)).max())

    assert furthest() < 5e-4
    for module in (lpc, stream_onnx):
        monkeypatch.setattr(module, "LEVINSON_WHITE_NOISE", 1e-9)
    assert furthest() > 0.1


def test_the_stream_onnx_finds_line_spectral_frequencies_closer_than_its_grid():
    """Three line spectral frequencies within 0.006 rad put two roots of one polynomial inside one
    step of lpc.py's grid (0.012 rad), where lpc.py turns to eigenvalues; the graph's finer grid
    finds them (within 1e-4 rad), and elsewhere it takes the coarse grid's values as lpc.py does."""
    import numpy as np
    from voiceface.lpc import line_spectral_frequencies, line_spectral_frequencies_fast
    from voiceface.stream_onnx import stream_step_module

    def polynomial(angles, root):                       # (1 + root z^-1) times a pair of unit-circle roots each
        out = np.array([1.0, root])
        for w in angles:
            out = np.convolve(out, [1.0, -2 * np.cos(w), 1.0])
        return out

    step = stream_step_module(trained_like(TCNConfig(channels=16, dilations=(1,), n_inputs=96)).float(), "level")
    for crowded in (False, True):
        lsf = np.linspace(0.15, 2.95, 16)
        if crowded:
            lsf[5], lsf[6] = lsf[4] + 0.003, lsf[4] + 0.006
        a = (polynomial(lsf[0::2], 1.0) + polynomial(lsf[1::2], -1.0)) / 2      # (P + Q) / 2: degree p + 1, last 0
        assert np.abs(line_spectral_frequencies(a[None, :17]) - lsf).max() < 1e-9
        coarse = step.roots_on_grid(torch.tensor(a[None] + a[None, ::-1], dtype=torch.float32), "coarse", 0)[1]
        assert bool(coarse) is not crowded                                  # the coarse grid misses two of P's roots
        found = step.roots_of(torch.tensor(a[None], dtype=torch.float32)).numpy()[0]   # as the graph's float32
        assert np.abs(found - lsf).max() < 1e-4, np.abs(found - lsf).max()
        if not crowded:                                                     # lpc.py's own grid values
            assert np.abs(found - line_spectral_frequencies_fast(a[None, :17])[0]).max() < 1e-5


@pytest.mark.parametrize("foreach", [None, True])       # None: the CPU's single-tensor path; True: a GPU's
def test_adamw_steps_bitwise_as_pytorchs_and_their_state_dicts_load_into_each_other(foreach):
    def net():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3),
                                   torch.nn.Linear(3, 3))       # the last layer never gets a gradient

    def groups(model):
        p = list(model.parameters())
        return [{"params": p[:2], "weight_decay": 0.01}, {"params": p[2:], "weight_decay": 0.3, "lr_scale": 0.5}]

    x = torch.randn(32, 8, generator=torch.Generator().manual_seed(1))

    def train(model, optimizer, steps, first=0):
        for i in range(first, first + steps):
            for group in optimizer.param_groups:        # as train.py's schedule sets it, each step
                group["lr"] = group.get("lr_scale", 1.0) * 1e-2 * (1 + i) / 20
            optimizer.zero_grad()
            (model[:3](x) ** 2).sum().backward()
            optimizer.step()

    ours, theirs = net(), net()
    mine, torchs = AdamW(groups(ours), lr=1e-2, foreach=foreach), torch.optim.AdamW(groups(theirs), lr=1e-2, foreach=foreach)
    train(ours, mine, 10)
    train(theirs, torchs, 10)
    assert all(torch.equal(p, q) for p, q in zip(ours.parameters(), theirs.parameters()))
    assert not torch.equal(ours[0].weight, net()[0].weight) and torch.equal(ours[3].weight, net()[3].weight)
    a, b = mine.state_dict(), torchs.state_dict()
    assert a["param_groups"] == b["param_groups"] and a["state"].keys() == b["state"].keys() == {0, 1, 2, 3}
    assert all(torch.equal(a["state"][k][n], b["state"][k][n]) for k in a["state"] for n in ("step", "exp_avg", "exp_avg_sq"))
    # a checkpoint's state, either way round: a resumed run goes on as the uninterrupted one
    crossed = [(AdamW, b), (torch.optim.AdamW, a)]
    for make, saved in crossed:
        model = net()
        model.load_state_dict(ours.state_dict())
        optimizer = make(groups(model), lr=1e-2, foreach=foreach)
        optimizer.load_state_dict(saved)
        train(model, optimizer, 10, first=10)
        if make is AdamW:
            train(theirs, torchs, 10, first=10)
        assert all(torch.equal(p, q) for p, q in zip(model.parameters(), theirs.parameters())), make
    with pytest.raises(ValueError, match="other groups"):
        AdamW([{"params": list(net().parameters())}]).load_state_dict(b)


def test_the_optimiser_leaves_pytorchs_compiler_unimported():
    # torch.optim's methods import torch._dynamo on first use: 2.4 s of every train.py start
    code = ("import sys, torch; sys.path.insert(0, sys.argv[1]); from models.optimizer import AdamW\n"
            "m = torch.nn.Linear(3, 2); o = AdamW(m.parameters()); m(torch.ones(1, 3)).sum().backward(); o.step()\n"
            "o.zero_grad(); o.load_state_dict(o.state_dict()); print('torch._dynamo' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, str(REPO_ROOT / "2_architecture_training")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr[-2000:]
