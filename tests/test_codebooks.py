"""The codebook pipeline: quantizer, VQ-VAE, sliding prior generation, CLIs, mismatches."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from models.checkpoint import save_checkpoint
from models.codebooks import Codebooks
from models.encode_codes import main as encode_main
from models.gpt import GPT, SIZES, GPTConfig
from models.sample_codes import main as sample_codes_main
from models.sampling import SamplingSettings
from models.train_prior import main as train_prior_main
from models.vqvae import VQVAE, Quantizer, ScalarQuantizer, VQVAEConfig, reconstruction_scores
from tokenizer import CantorError, Note, NoteSequence
from tokenizer.readers import read_midi
from tokenizer.slices import piece_to_slices
from tokenizer.writers import write_midi

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_VQVAE = ROOT / "checkpoints" / "chorales_vqvae_k16"


def make_prior(
    folder: Path, codes: int = 16, block: int = 32, name: str = "prior", phase_period: int = 16, **card
) -> Path:
    """A tiny random prior saved as a real checkpoint; ``card`` overrides fields of its JSON."""
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=codes + 1, block_size=block, dropout=0.0, phase_period=phase_period, **SIZES["tiny"])
    info = {
        "kind": "prior",
        "model_config": config.to_json(),
        "codes": codes,
        "codes_per_quarter": 16,
        "vqvae": "chorales_vqvae_k16",
        "model_card": {"size": "tiny"},
        **card,
    }
    return save_checkpoint(folder / name, GPT(config), info)


def test_quantizer_picks_the_nearest_code():
    q = Quantizer(VQVAEConfig(codes=4, code_dim=2))
    q.codebook.data = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    z = torch.tensor([[9.0, 1.0], [1.0, 1.0], [6.0, 7.0], [-3.0, 9.0]])
    assert q.nearest(z).tolist() == [1, 0, 3, 2]


def test_the_nearest_code_is_found_in_float32_under_bf16_autocast():
    """Training's bf16 autocast must not blur the distances: vectors far from the origin whose
    nearest codes differ by less than bfloat16 can tell apart."""
    torch.manual_seed(0)
    q = Quantizer(VQVAEConfig(codes=64, code_dim=64))
    q.codebook.data = 20 + torch.randn(64, 64) * 0.05
    z = 20 + torch.randn(256, 64) * 0.05
    exact = q.nearest(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(q.nearest(z), exact)
        assert torch.equal(q.nearest(z.bfloat16()), q.nearest(z.bfloat16().float()))  # bfloat16 latents too


def test_ema_updates_move_the_codes_towards_their_vectors():
    torch.manual_seed(0)
    q = Quantizer(VQVAEConfig(codes=4, code_dim=2, dead_threshold=0.0))
    q.initialised.fill_(True)
    q.codebook.data = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    q.ema_sum.copy_(q.codebook.data)
    q.train()
    target = torch.tensor([2.0, 2.0])
    before = (q.codebook[0] - target).norm().item()
    for _ in range(50):
        q(target + 0.1 * torch.randn(64, 2))
    assert (q.codebook[0] - target).norm().item() < before / 2
    assert torch.allclose(q.codebook[3], torch.tensor([10.0, 10.0]), atol=1e-3)  # unused, not restarted


def test_dead_codes_are_restarted_on_encoder_outputs():
    torch.manual_seed(0)
    q = Quantizer(VQVAEConfig(codes=8, code_dim=2))
    q.initialised.fill_(True)
    q.codebook.data = torch.cat([torch.zeros(1, 2), torch.full((7, 2), 100.0)])  # 7 codes far away
    q.ema_sum.copy_(q.codebook.data)
    q.train()
    for _ in range(100):
        z = torch.randn(256, 2)
        q(z)
        q.restart_dead(z)
    assert q.restarts >= 7
    usage = torch.bincount(q.nearest(torch.randn(4096, 2)), minlength=8)
    assert (usage > 0).all()  # every code is in use again


def test_dead_codes_restart_on_the_worst_reconstructed_outputs_when_told():
    torch.manual_seed(0)
    q = Quantizer(VQVAEConfig(codes=4, code_dim=2, restart_by="recon"))
    q.initialised.fill_(True)
    q.codebook.data = torch.tensor([[0.0, 0.0], [100.0, 100.0], [100.0, 100.0], [100.0, 100.0]])
    q.ema_count.copy_(torch.tensor([10.0, 0.0, 0.0, 0.0]))  # three dead codes
    z = torch.cat([torch.randn(34, 2) * 0.01, torch.full((30, 2), 3.0)])  # 30 outputs far off
    badness = torch.zeros(64)
    badness[:24] = 1.0  # yet the patches of 24 near ones are reconstructed worst
    q.restart_dead(z, badness)  # each dead code picks among the 8 x 3 worst
    assert q.codebook[1:].abs().max() < 0.1
    q.ema_count.copy_(torch.tensor([10.0, 0.0, 0.0, 0.0]))
    q.restart_dead(z)  # by distance to the codes: the far outputs
    assert (q.codebook[1:] == 3.0).all()


def test_band_nets_read_and_write_each_patch_on_its_own():
    """A note lies in one row, so the 8 bands x 2 eighths of 12 x 16 cells partition a slice; the
    band encoder's latent (b, e) sees only its patch, and the decoder's patch only its latent."""
    torch.manual_seed(0)
    model = VQVAE(VQVAEConfig(codes=8, net="bands")).eval()
    slices = torch.zeros(2, 1, 88, 32)
    slices[1, 0, 60 - 21, 20] = 1.0  # middle C (padded row 43: band 3) in the second eighth
    with torch.no_grad():
        z = model.encoder(slices)  # (B, D, 8, 2)
        changed = (z[0] != z[1]).any(dim=0)
        assert changed.nonzero().tolist() == [[3, 1]]
        latents = z[:1].clone()
        latents[0, :, 3, 1] += 1.0
        logits = model.decoder(torch.cat([z[:1], latents]))
    rows, ticks = (logits[0, 0] != logits[1, 0]).nonzero(as_tuple=True)
    assert rows.min() >= 3 * 12 - 4 and rows.max() < 4 * 12 - 4 and ticks.min() >= 16


@pytest.mark.parametrize("original", [False, True])
def test_decoded_probabilities_undo_the_weight_on_sounding_cells(original):
    """Trained with "on" cells weighed 8x, a logit of log 8 means even odds: decode says 0.5
    there, and a logit of 1 (sigmoid 0.73, but 3 to 8 against) is a silent cell. The original
    design's plain BCE needs no shift."""
    torch.manual_seed(0)
    model = VQVAE(VQVAEConfig(codes=4, net="conv" if original else "bands", original=original)).eval()
    last = model.decoder.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(1.0)
    probabilities = model.decode(torch.zeros(1, 16, dtype=torch.long))
    expected = torch.sigmoid(torch.tensor(1.0 if original else 1.0 - math.log(8.0)))
    assert torch.allclose(probabilities[0, 40:48, 4:12], expected)
    assert (probabilities[0, 40:48, 4:12] > 0.5).all() == original
    with pytest.raises(ValueError, match="pos_weight"):
        VQVAEConfig(pos_weight=0.0)


def test_codebook_starts_from_k_means_of_encoder_outputs():
    torch.manual_seed(0)
    q = Quantizer(VQVAEConfig(codes=2, code_dim=2))
    q.train()
    z = torch.cat([torch.randn(100, 2) * 0.1 + 5, torch.randn(100, 2) * 0.1 - 5])
    q(z)
    centres = sorted(q.codebook.detach()[:, 0].tolist())
    assert centres[0] == pytest.approx(-5, abs=0.5) and centres[1] == pytest.approx(5, abs=0.5)


def test_fsq_has_one_grid_point_per_code_and_passes_gradients_straight_through():
    torch.manual_seed(0)
    q = ScalarQuantizer(VQVAEConfig(codes=8 * 5 * 3, code_dim=4, fsq_levels="8,5,3"))
    every = torch.arange(120)
    grid = (every[:, None] // q.basis) % q.levels
    assert sorted((grid * q.basis).sum(-1).tolist()) == list(range(120))  # a bijection
    z = (torch.randn(2000, 4) * 3).requires_grad_()
    quantized, indices, loss = q(z)
    assert indices.min() >= 0 and indices.max() < 120 and loss.item() == 0.0
    assert torch.allclose(quantized, q.lookup(indices), atol=1e-5)  # what decoding a code gives
    assert torch.equal(q.nearest(z.detach()), indices)
    quantized.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert len(indices.unique()) > 40  # random latents spread over the grid


@pytest.mark.parametrize(
    "levels, codes, said",
    [("8,5,5,5", 16, "make 1000 codes, not 16"), ("8,x", 16, "must look like 8,5,5,5"), ("1,4", 4, "2-32 levels")],
)
def test_bad_fsq_levels_are_refused(levels, codes, said):
    with pytest.raises(ValueError, match=said):
        VQVAEConfig(codes=codes, fsq_levels=levels)


def test_an_fsq_checkpoint_loads_and_decodes_its_codes(tmp_path, chorales):
    config = VQVAEConfig(codes=1000, hidden=16, code_dim=8, fsq_levels="8,5,5,5")
    card = {"kind": "vqvae", "vqvae_config": config.to_json(), "tokenizer": {"steps_per_quarter": 4}}
    path = save_checkpoint(tmp_path / "fsq", VQVAE(config), card)
    codebooks = Codebooks(path)
    slices, _ = codebooks.slices_of(chorales.piece("bwv66.6").cropped(0, 16))
    codes = codebooks.encode(slices)
    assert codebooks.codes == 1000 and codes.shape == (4, 16) and codes.max() < 1000
    assert codebooks.decode_slices(codes).shape == (4, 88, 32)


def test_a_tiny_vqvae_overfits_a_few_slices(chorales):
    torch.manual_seed(0)
    slices, _ = piece_to_slices(chorales.piece("bwv66.6"))
    data = torch.from_numpy(slices[:6].astype(np.float32))
    model = VQVAE(VQVAEConfig(codes=64, hidden=32, code_dim=16, dead_threshold=0.0))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(400):
        model.train()
        loss = model(data[:, None])[2]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    scores = reconstruction_scores(model, data)
    # every onset exact; a frame cell or two may sit on the 0.5 threshold, depending on the CPU's kernels
    assert scores["onset_f1"] == 1.0 and scores["frame_f1"] >= 0.99


def test_sliding_generation_feeds_the_full_context_at_every_step(tmp_path):
    codebooks = Codebooks(SHIPPED_VQVAE, make_prior(tmp_path, block=32))
    seen: list[int] = []
    codes = list(codebooks.stream_codes(6, SamplingSettings(seed=1), on_context=seen.append))
    assert len(codes) == 96 and all(0 <= c < 16 for c in codes)  # never the start token
    assert seen[:31] == list(range(1, 32))  # the window grows to the block...
    assert all(length == 32 for length in seen[31:])  # ...then slides one code at a time, always full


def test_continuing_uses_the_primer_codes_as_context(tmp_path, chorales):
    codebooks = Codebooks(SHIPPED_VQVAE, make_prior(tmp_path, block=64))
    slices, _ = codebooks.slices_of(chorales.piece("bwv66.6").cropped(0, 8))
    primer_codes = codebooks.encode(slices)
    seen: list[int] = []
    list(codebooks.stream_codes(1, SamplingSettings(seed=1), primer_codes, on_context=seen.append))
    assert seen[0] == 1 + primer_codes.size


def test_cli_writes_a_midi_file_with_notes(tmp_path, capsys):
    prior = make_prior(tmp_path)
    out = tmp_path / "codes.mid"
    args = ["--vqvae", str(SHIPPED_VQVAE), "--prior", str(prior), "--quarters", "8", "--top-k", "8", "--out", str(out)]
    assert sample_codes_main(args) == 0
    piece = read_midi(out)
    assert piece.notes and piece.time_signature == (4, 4)
    assert piece.total_steps <= 8 * 4 + 4


def test_cli_continue_keeps_the_primer_and_counts_dropped_notes(tmp_path, capsys, chorales):
    primer = chorales.piece("bwv66.6").cropped(0, 16)
    primer.notes.append(Note(110, 0, 4))  # above the piano: dropped and counted
    write_midi(primer, tmp_path / "primer.mid")
    out = tmp_path / "out.mid"
    args = ["--vqvae", str(SHIPPED_VQVAE), "--prior", str(make_prior(tmp_path)), "--quarters", "4"]
    assert sample_codes_main([*args, "--continue", str(tmp_path / "primer.mid"), "--out", str(out)]) == 0
    assert "1 notes outside the piano range" in capsys.readouterr().out
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(str(out))
    assert midi.instruments[0].name == "primer"
    assert len(midi.instruments[0].notes) == len(primer.as_played().notes)


@pytest.mark.parametrize("bad", [["--quarters", "0"], ["--quarters", "-3"], ["--top-k", "0"]])
def test_bad_arguments_give_one_clear_error(tmp_path, capsys, bad):
    args = ["--vqvae", str(SHIPPED_VQVAE), "--prior", str(make_prior(tmp_path)), "--out", str(tmp_path / "x.mid")]
    with pytest.raises(SystemExit) as exit_info:
        sample_codes_main([*args, *bad])
    assert exit_info.value.code == 2
    assert f"argument {bad[0]}: {bad[1]} is outside" in capsys.readouterr().err


def test_a_piece_shorter_than_a_quarter_is_refused():
    codebooks = Codebooks(SHIPPED_VQVAE)
    with pytest.raises(CantorError, match="shorter than one quarter"):
        codebooks.slices_of(NoteSequence([Note(60, 0, 2)], name="tiny.mid"))


def test_a_prior_for_another_codebook_size_layout_or_phase_is_refused_with_both_names(tmp_path):
    with pytest.raises(CantorError, match=r"prior was trained on 32 codes, but chorales_vqvae_k16 has 16"):
        Codebooks(SHIPPED_VQVAE, make_prior(tmp_path, codes=32))
    with pytest.raises(CantorError, match=r"prior writes 8 codes a quarter, but chorales_vqvae_k16's layout has 16"):
        Codebooks(SHIPPED_VQVAE, make_prior(tmp_path, codes_per_quarter=8))
    with pytest.raises(CantorError, match=r"phases over 12 codes, but a quarter of chorales_vqvae_k16 is 16"):
        Codebooks(SHIPPED_VQVAE, make_prior(tmp_path, phase_period=12))
    assert Codebooks(SHIPPED_VQVAE, make_prior(tmp_path)).warning == ""
    no_phases = Codebooks(SHIPPED_VQVAE, make_prior(tmp_path, phase_period=0))
    assert "does not know where a quarter begins" in no_phases.warning


def test_corrupt_and_wrong_kind_checkpoints_are_refused(tmp_path):
    broken = tmp_path / "broken"
    for suffix in (".json", ".safetensors"):
        shutil.copy(SHIPPED_VQVAE.with_suffix(suffix), broken.with_suffix(suffix))
    broken.with_suffix(".safetensors").write_bytes(b"\0" * 100)
    with pytest.raises(CantorError, match="corrupt"):
        Codebooks(broken)
    with pytest.raises(CantorError, match="not a VQ-VAE"):
        Codebooks(make_prior(tmp_path))
    with pytest.raises(CantorError, match="not a 'prior' one"):
        Codebooks(SHIPPED_VQVAE, SHIPPED_VQVAE)


def small_dataset(folder: Path, chorales) -> Path:
    """A prepared dataset of 16-quarter chorale excerpts, named so that train and val both exist."""
    from tokenizer.dataset import split_of
    from tokenizer.prepare import main as prepare_main

    source = folder / "excerpts"
    source.mkdir()
    files = [f"{n}.mid" for n in chorales.names()]
    picked = [f for f in files if split_of(f) == "val"][:2] + [f for f in files if split_of(f) == "train"][:4]
    for file in picked:
        write_midi(chorales.piece(file.removesuffix(".mid")).cropped(0, 64), source / file)
    assert prepare_main(["--source", str(source), "--name", "small", "--data-root", str(folder), "--workers", "1"]) == 0
    return folder / "small"


def test_encode_codes_then_train_prior_makes_a_matching_pair(tmp_path, chorales):
    data = small_dataset(tmp_path, chorales)
    codes = tmp_path / "codes"
    assert encode_main(["--vqvae", str(SHIPPED_VQVAE), "--data", str(data), "--out", str(codes)]) == 0
    index = json.loads((codes / "index.json").read_text())
    assert index["codes"] == 16 and len(index["pieces"]) == 6
    train_ids = np.fromfile(codes / "train.bin", dtype=np.uint16)
    assert train_ids.max() < 16 and len(train_ids) == 4 * 16 * 16
    out = tmp_path / "prior"
    args = ["--codes", str(codes), "--size", "tiny", "--steps", "3", "--eval-every", "3", "--eval-batches", "1"]
    assert train_prior_main([*args, "--batch-size", "4", "--threads", "1", "--out", str(out)]) == 0
    pair = Codebooks(SHIPPED_VQVAE, out)
    assert pair.prior.config.vocab_size == 17 and pair.prior.config.block_size == 192
    assert pair.warning == "" and pair.prior_info["codes_per_quarter"] == 16


def test_transposed_train_codes_are_the_codes_of_the_transposed_pieces(tmp_path, chorales):
    from tokenizer.augment import transpose

    data = small_dataset(tmp_path, chorales)
    codes = tmp_path / "codes"
    assert (
        encode_main(["--vqvae", str(SHIPPED_VQVAE), "--data", str(data), "--out", str(codes), "--transpose", "2"]) == 0
    )
    index = json.loads((codes / "index.json").read_text())
    train = [p for p in index["pieces"] if p["split"] == "train"]
    assert len(train) == 4 * 5  # each of the 4 train pieces in 5 keys
    val = [p["name"] for p in index["pieces"] if p["split"] == "val"]
    assert len(val) == 2 and not any("@" in name for name in val)  # the val pieces as written
    moved = next(p for p in train if p["name"].endswith("@-2"))
    pipeline = Codebooks(SHIPPED_VQVAE)
    from tokenizer.dataset import WordDataset

    piece = WordDataset(data).piece(moved["name"].split("@")[0])
    expected = pipeline.encode(pipeline.slices_of(transpose(piece, -2))[0]).reshape(-1)
    stored = np.fromfile(codes / "train.bin", dtype=np.uint16)[moved["offset"] : moved["offset"] + moved["length"]]
    assert np.array_equal(stored, expected)


def test_the_layout_measure_knows_real_quarters_and_finds_a_shifted_phase():
    from bench.codebooks import in_layout, layout_table

    codes = ROOT / "data" / "chorales" / "codes"

    def split(name: str) -> np.ndarray:
        return np.fromfile(codes / f"{name}.bin", dtype=np.uint16).reshape(-1, 16).astype(np.int64)

    table = layout_table(split("train"), json.loads((codes / "index.json").read_text())["codes"])
    val = split("val")
    assert in_layout(val, table).mean() > 0.9
    for shift in (1, 2, 8, 15):  # a prior out of phase writes each code where another position belongs
        assert in_layout(np.roll(val, shift, axis=1), table).mean() < 0.05


def test_the_codebook_bench_names_a_missing_checkpoint_in_one_line(tmp_path, capsys):
    from bench.codebooks import main as bench_main

    assert bench_main(["--vqvae", str(tmp_path / "nope")]) == 1
    assert bench_main(["--compare", str(tmp_path / "other")]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: nope.json: no such checkpoint",
        "error: other.json: no such checkpoint",
    ]


@pytest.mark.parametrize("stem", ["chorales_vqvae", "chorales_vqvae_k16"])
def test_code_patterns_are_what_each_code_decodes_to_around_middle_c(stem):
    pipeline = Codebooks(ROOT / "checkpoints" / stem)
    patterns = pipeline.code_patterns()
    assert patterns.shape == (pipeline.codes, 12, 16)
    for code in (0, pipeline.codes // 2, pipeline.codes - 1):
        slices = pipeline.decode_slices(np.full((1, 16), code))
        assert np.allclose(patterns[code], slices[0, 53 - 21 : 65 - 21, :16], atol=1e-5)  # MIDI 53-64, first eighth
