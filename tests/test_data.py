"""Data loaders: the local path on fixture files and on the real offline copies; clear errors otherwise."""

from __future__ import annotations

import pytest
import torch

from contrastive_tutorial import data


@pytest.fixture
def tiny_data_dir(tmp_path, monkeypatch):
    sts = tmp_path / "sts" / "semeval"
    sts.mkdir(parents=True)
    (sts / "2012.A.test.tsv").write_text("4.5\tA cat sits.\tA cat is sitting.\n0.0\tRain.\tStocks fell.\n")
    (sts / "2012.B.test.tsv").write_text("2.0\tOne\ttwo\n")
    sick = tmp_path / "sts" / "sick"
    sick.mkdir()
    header = "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
    (sick / "SICK_train.txt").write_text(header + "1\tA man runs\tA person runs\t4.7\tENTAILMENT\n")
    stc = tmp_path / "short_text_clustering"
    stc.mkdir()
    (stc / "agnews.tsv").write_text("3\tstocks rally\n1\tteam wins cup\n")
    monkeypatch.setenv("CT_DATA_DIR", str(tmp_path))
    return tmp_path


def test_sts_local_concatenates_subsets(tiny_data_dir):
    with pytest.warns(UserWarning, match="lacks the subset"):
        ds = data.load_sts("sts12")
    assert ds.column_names == ["sentence1", "sentence2", "score", "subset"]
    assert ds["score"] == [4.5, 0.0, 2.0]
    assert ds["subset"] == ["A", "A", "B"]
    assert ds[0]["sentence2"] == "A cat is sitting."


def test_sick_and_sickr_local(tiny_data_dir):
    sick = data.load_sick("train")
    assert sick[0] == {"sentence1": "A man runs", "sentence2": "A person runs", "score": 4.7, "label": "ENTAILMENT"}
    assert data.load_sts("sickr", split="train").column_names == ["sentence1", "sentence2", "score"]


def test_short_text_local(tiny_data_dir):
    ds = data.load_short_text_clustering("agnews")
    assert ds["label"] == [3, 1] and ds["text"] == ["stocks rally", "team wins cup"]


def test_short_text_online_file_fields(tiny_data_dir, tmp_path, monkeypatch):
    # The public SearchSnippets file: prediction, gold label, text; other files: label, text.
    online = tmp_path / "traintest"
    online.write_text("5\t3\timdb title oscar \n\n0\t2\tsupport microsoft\tdisk\r\n")
    monkeypatch.setitem(data.SHORT_TEXT_SETS, "searchsnippets", data.ShortTextSet(8, str(online), 1, 2))
    ds = data.load_short_text_clustering("searchsnippets", source="hub")
    assert ds["label"] == [3, 2]
    assert ds["text"] == ["imdb title oscar", "support microsoft\tdisk"]
    online.write_text("5\t3\tok\n7\tonly two fields\n")
    with pytest.raises(ValueError, match="traintest:2: expected 3"):
        data.load_short_text_clustering("searchsnippets", source="hub")
    online.write_text("5\tsports\tteam wins\n")  # a text where the label should be
    with pytest.raises(ValueError, match="traintest:1: expected an integer label in field 1"):
        data.load_short_text_clustering("searchsnippets", source="hub")
    monkeypatch.setitem(data.SHORT_TEXT_SETS, "agnews", data.ShortTextSet(4))
    with pytest.raises(data.SourceUnavailableError, match="no known public file"):
        data.load_short_text_clustering("agnews", source="hub")


def test_classification_split_is_seeded_and_labels_start_at_zero(tiny_data_dir):
    task = data.load_classification("agnews", test_size=1, seed=3)
    assert task.class_names == ["World", "Sports", "Business", "Sci/Tech"]
    assert sorted(task.train_texts + task.test_texts) == ["stocks rally", "team wins cup"]
    pairs = dict(zip(task.train_texts + task.test_texts, task.train_labels + task.test_labels))
    assert pairs == {"stocks rally": 2, "team wins cup": 0}
    assert data.load_classification("agnews", test_size=1, seed=3) == task
    with pytest.raises(ValueError, match="name"):
        data.load_classification("imdb")


def test_classification_split_indexes_columns_with_plain_ints(tiny_data_dir, monkeypatch):
    """datasets 4.0 (Colab's) refuses a NumPy integer as a column index; the split must not use one."""

    class StrictColumn(list):
        def __getitem__(self, key):
            if type(key) is not int and not isinstance(key, slice):
                raise TypeError(f"Wrong key type: {type(key)}")
            return super().__getitem__(key)

    class StrictDataset:
        def __init__(self, ds):
            self.columns = {name: StrictColumn(ds[name]) for name in ds.column_names}

        def __len__(self):
            return len(self.columns["text"])

        def __getitem__(self, name):
            return self.columns[name]

    real = data.load_short_text_clustering
    monkeypatch.setattr(data, "load_short_text_clustering", lambda *a, **k: StrictDataset(real(*a, **k)))
    task = data.load_classification("agnews", test_size=1, seed=3)
    assert sorted(task.train_texts + task.test_texts) == ["stocks rally", "team wins cup"]


def test_classification_hub_only_task_says_so(tiny_data_dir, offline_hub):
    with pytest.raises(data.SourceUnavailableError, match="Hugging Face hub"):
        data.load_classification("sst2")


def test_missing_local_copy_says_what_to_set(tiny_data_dir, offline_hub):
    with pytest.raises(data.SourceUnavailableError, match="CT_DATA_DIR"):
        data.load_sts("sts13", source="local")
    with pytest.raises(data.SourceUnavailableError, match="CT_DATA_DIR"):
        data.load_short_text_clustering("biomedical")


def test_hub_unreachable_raises_clear_error(tiny_data_dir, offline_hub):
    with pytest.raises(data.SourceUnavailableError, match="Hugging Face hub"):
        data.load_sts("sts15")
    with pytest.raises(data.SourceUnavailableError, match="Hugging Face hub"):
        data.load_sts("sts12", source="hub")


def test_sick_from_the_hub_has_the_local_columns(tiny_data_dir, monkeypatch):
    import datasets

    hub = datasets.Dataset.from_dict(
        {"sentence_A": ["A man runs", "A dog sleeps"], "sentence_B": ["A person runs", "A dog runs"],
         "label": [0, 2], "relatedness_score": [4.7, 2.5]},
        features=datasets.Features({
            "sentence_A": datasets.Value("string"), "sentence_B": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"]),
            "relatedness_score": datasets.Value("float32")}),
    )
    asked = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kw: asked.append((args, kw)) or hub)
    sick = data.load_sick("test")  # no local test file: the hub
    assert asked == [(("RobZamp/sick",), {"revision": "refs/convert/parquet", "split": "test"})]
    assert sick.column_names == data.load_sick("train").column_names
    assert sick["label"] == ["ENTAILMENT", "CONTRADICTION"] and sick["score"] == pytest.approx([4.7, 2.5])
    assert data.load_sick("train", source="hub")["sentence1"] == ["A man runs", "A dog sleeps"]


def test_bad_arguments_name_the_argument(tiny_data_dir):
    with pytest.raises(ValueError, match="task"):
        data.load_sts("sts99")
    with pytest.raises(ValueError, match="source"):
        data.load_sts("sts12", source="disk")
    with pytest.raises(ValueError, match="name"):
        data.load_short_text_clustering("imdb")
    with pytest.raises(ValueError, match="split"):
        data.load_sick("dev")


def test_malformed_file_names_the_line(tiny_data_dir):
    (tiny_data_dir / "short_text_clustering" / "tweet.tsv").write_text("1\tok\nbroken line\n")
    with pytest.raises(ValueError, match="tweet.tsv:2"):
        data.load_short_text_clustering("tweet")


# ----------------------------------------------------------------- the real offline copies
def test_real_sts_sizes(shared_data_dir, monkeypatch):
    monkeypatch.setenv("CT_DATA_DIR", str(shared_data_dir))
    # SemEval test sets: STS13 1,500 pairs (without the licensed SMT subset), STS14 3,750;
    # the offline STS12 lacks MSRvid (750 of its 3,108 pairs) and says so
    with pytest.warns(UserWarning, match="MSRvid"):
        assert len(data.load_sts("sts12")) == 2358
    assert [len(data.load_sts(t)) for t in ("sts13", "sts14")] == [1500, 3750]
    scores = data.load_sts("sts14")["score"]
    assert 0 <= min(scores) and max(scores) <= 5
    assert len(data.load_sick("train")) == 4500 and len(data.load_sick("validation")) == 500


@pytest.mark.parametrize("name", sorted(data.SHORT_TEXT_SETS))
def test_real_short_text_sets(shared_data_dir, monkeypatch, name):
    monkeypatch.setenv("CT_DATA_DIR", str(shared_data_dir))
    ds = data.load_short_text_clustering(name)
    assert len(set(ds["label"])) == data.SHORT_TEXT_SETS[name][0]
    assert all(isinstance(t, str) and t for t in ds["text"][:100])


def test_real_agnews_classification_split(shared_data_dir, monkeypatch):
    monkeypatch.setenv("CT_DATA_DIR", str(shared_data_dir))
    task = data.load_classification("agnews")
    assert (len(task.train_texts), len(task.test_texts)) == (7000, 1000)
    assert set(task.train_labels) == set(task.test_labels) == {0, 1, 2, 3}
    assert sorted(task.train_texts + task.test_texts) == sorted(data.load_short_text_clustering("agnews")["text"])


def test_offline_unlabelled_sentences():
    ds = data.load_unlabelled_sentences("lee_background")
    assert len(ds) > 2000
    assert all(len(s.split()) >= 4 for s in ds["text"])
    assert len(data.load_unlabelled_sentences("lee_background", limit=10)) == 10
    with pytest.raises(ValueError, match="name"):
        data.load_unlabelled_sentences("books")


def test_digits_images():
    d = data.load_images("digits")
    assert d.train_images.dtype == torch.uint8 and d.train_images.shape[1:] == (1, 8, 8)
    assert len(d.train_images) + len(d.test_images) == 1797
    assert set(d.test_labels.tolist()) == set(range(10))
    with pytest.raises(ValueError, match="name"):
        data.load_images("mnist")


def _forget_fsspec_file_systems() -> None:
    """Drop every cached fsspec file system: a test must not meet one another test made (with
    datasets 4.0, an ``https`` file system left by an earlier test made it fetch ``http://`` URLs
    as ``https://``)."""
    import fsspec

    for cls in set(fsspec.registry.values()):
        cls.clear_instance_cache()


@pytest.fixture
def loopback_server(tmp_path, monkeypatch):
    """A real HTTP server on 127.0.0.1 serving ``tmp_path / "www"``; yields (folder, base URL).
    fsspec's cached file systems are dropped before and after, so no other test's state leaks in.
    fsspec 2025.3.0 (Colab's) declares no protocols on its HTTP file system, so the first lookup
    stamps the class with that one (``https`` after a test that touched an https URL) and datasets
    4.0 then prefixes ``http://`` URLs with ``https://``: the class gets the pair newer fsspec declares."""
    import functools
    import http.server
    import threading

    from fsspec.implementations.http import HTTPFileSystem

    _forget_fsspec_file_systems()
    monkeypatch.setattr(HTTPFileSystem, "protocol", ("http", "https"))

    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        _forget_fsspec_file_systems()


@pytest.mark.parametrize("name", sorted(data.SHORT_TEXT_SETS))
def test_short_text_sets_download_through_real_http(shared_data_dir, loopback_server, monkeypatch, name):
    """The online path as a new user meets it: datasets' text loader over fsspec's HTTP file system
    (which needs aiohttp) against a loopback server holding each set in its public file's format."""
    import datasets.config
    import huggingface_hub.constants

    root, base = loopback_server
    spec = data.SHORT_TEXT_SETS[name]
    offline = data.load_short_text_clustering(name)
    path = spec.url.removeprefix(data._STC_ONLINE_ROOT)
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    width = max(spec.label_field, spec.text_field) + 1
    lines = []
    for label, text in zip(offline["label"][:300], offline["text"][:300]):
        fields = ["0"] * width
        fields[spec.label_field], fields[spec.text_field] = str(label), text
        lines.append("\t".join(fields))
    (root / path).write_text("\n".join(lines) + "\n")
    monkeypatch.setitem(data.SHORT_TEXT_SETS, name, spec._replace(url=base + path))
    monkeypatch.delenv("CT_DATA_DIR")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", root.parent / "cache", raising=False)
    online = data.load_short_text_clustering(name)
    assert online["label"] == offline["label"][:300] and online["text"] == offline["text"][:300]


def test_a_limited_wiki1m_streams_only_the_sentences_it_needs(monkeypatch):
    import datasets

    read = []

    def fake_load_dataset(kind, data_files, split, streaming=False):
        assert kind == "text" and streaming, "a limited read must stream"
        for i in range(10_000):
            read.append(i)
            yield {"text": "short" if i % 2 else f"sentence number {i} with words"}

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = data.load_unlabelled_sentences("wiki1m", limit=5)
    assert len(ds) == 5 and len(read) == 9  # every other row is too short; nothing past the fifth kept one
    with pytest.raises(ValueError, match="limit"):
        data.load_unlabelled_sentences("lee_background", limit=0)


def test_data_files_name_the_file_and_line_of_what_is_wrong(tiny_data_dir):
    sts = tiny_data_dir / "sts" / "semeval" / "2012.A.test.tsv"
    sick = tiny_data_dir / "sts" / "sick" / "SICK_train.txt"
    stc = tiny_data_dir / "short_text_clustering" / "agnews.tsv"
    header = "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
    cases = [
        (sts, "4.5\tA\tB\nnan\tC\tD\n", lambda: data.load_sts("sts12"), r"2012.A.test.tsv:2: column 1 must be a finite"),
        (sts, "4.5\tA\tB\nfive\tC\tD\n", lambda: data.load_sts("sts12"), r"2012.A.test.tsv:2: expected a number"),
        (sts, "7.5\tA\tB\n", lambda: data.load_sts("sts12"), r"2012.A.test.tsv:1: column 1 must be .* in \[0.0, 5.0\]"),
        (sts, "", lambda: data.load_sts("sts12"), "2012.A.test.tsv: the file holds no rows"),
        (sick, "1\tA man\tA person\t4.7\tENTAILMENT\n", lambda: data.load_sick("train"), "SICK_train.txt:1: expected the header"),
        (sick, header + "1\tA\tB\t4.7\tMAYBE\n", lambda: data.load_sick("train"), "SICK_train.txt:2: unknown entailment label"),
        (stc, "3\tstocks\nx\tteam\n", lambda: data.load_short_text_clustering("agnews"), "agnews.tsv:2: expected an integer label"),
    ]
    for path, text, load, match in cases:
        path.write_text(text)
        with pytest.raises(ValueError, match=match):
            load()
    sts.write_bytes("\ufeff4.5\tA cat sits.\tA cat is sitting.\n".encode("utf-8"))  # a byte-order mark
    with pytest.warns(UserWarning):
        assert data.load_sts("sts12")["score"] == [4.5, 2.0]
    sts.write_bytes("4.5\tcaf\xe9\tB\n".encode("latin-1"))
    with pytest.raises(ValueError, match="2012.A.test.tsv: not UTF-8"):
        data.load_sts("sts12")


def test_classification_split_sizes_must_leave_both_sides(tiny_data_dir):
    for bad in (0, 2, -1, 1.5):
        with pytest.raises(ValueError, match="test_size must be an integer in"):
            data.load_classification("agnews", test_size=bad)
    split = data.load_classification("agnews", test_size=1)
    assert len(split.train_texts) == len(split.test_texts) == 1


def test_transfer_tasks_follow_senteval_protocols_on_the_hub_schemas(monkeypatch):
    """Each of the seven tasks, read from smoke mode's stand-ins with the hub sets' schemas."""
    from contrastive_tutorial import data, smoke

    monkeypatch.setattr(data, "load_dataset", smoke.load_dataset)
    for name in ("mr", "cr", "subj", "mpqa"):
        task = data.load_transfer_task(name)
        assert task.test_texts is None and task.dev_texts is None and isinstance(task.train_texts[0], str)
        assert len(task.train_texts) == len(task.train_labels) >= 32 and set(task.train_labels) <= {0, 1}
    sst2 = data.load_transfer_task("sst2")
    assert len(sst2.dev_texts) == 16 and min(sst2.test_labels) >= 0  # a labelled test split, not GLUE's hidden one
    trec = data.load_transfer_task("trec")
    assert trec.dev_texts is None and len(trec.test_texts) == 24 and len(trec.train_texts) == 24
    mrpc = data.load_transfer_task("mrpc")
    assert len(mrpc.train_texts) == 24 + 8 and isinstance(mrpc.train_texts[0], tuple) and len(mrpc.train_texts[0]) == 2
    small = data.load_transfer_task("mr", max_items=10, seed=1)
    assert len(small.train_texts) == 10 and small.train_texts == data.load_transfer_task("mr", max_items=10, seed=1).train_texts
    with pytest.raises(ValueError, match="name must be"):
        data.load_transfer_task("sick")
    with pytest.raises(ValueError, match="max_items"):
        data.load_transfer_task("mr", max_items=1)


def test_offline_transfer_task_is_a_cross_validation_sample_of_agnews(shared_data_dir, monkeypatch):
    monkeypatch.setenv("CT_DATA_DIR", str(shared_data_dir))
    task = data.load_transfer_task("agnews", max_items=200)
    assert len(task.train_texts) == 200 and task.test_texts is None and set(task.train_labels) <= {0, 1, 2, 3}


@pytest.mark.parametrize("bad", [0, -1, True, 2.0, "10"])
def test_sizes_are_counts_never_read_as_all_or_none(tiny_data_dir, bad):
    """limit=0 used to return every triple and max_pairs=0 an empty sample, as if that had been asked for."""
    from contrastive_tutorial.evaluate import sts_tasks

    with pytest.raises(ValueError, match="limit must be a positive integer or None"):
        data.load_nli_triples("sick", limit=bad)
    with pytest.raises(ValueError, match="max_pairs must be a positive integer or None"):
        sts_tasks(["sts12"], max_pairs=bad)
    with pytest.raises(ValueError, match="n must be a positive integer or None"):
        data.short_text_sample("searchsnippets", n=bad)


def test_sizes_that_are_legal_give_what_they_say(shared_data_dir, monkeypatch):
    from contrastive_tutorial.evaluate import sts_tasks

    monkeypatch.setenv("CT_DATA_DIR", str(shared_data_dir))
    whole = data.load_nli_triples("sick")
    assert len(data.load_nli_triples("sick", limit=1)) == 1
    assert len(data.load_nli_triples("sick", limit=10**6)) == len(whole) > 1
    full = sts_tasks(["sts13"])["sts13"]
    assert len(sts_tasks(["sts13"], max_pairs=1)["sts13"]) == 1
    assert len(sts_tasks(["sts13"], max_pairs=10**6)["sts13"]) == len(full)


def test_sts_tasks_refuses_one_string_and_images_a_bad_test_fraction():
    from contrastive_tutorial.evaluate import sts_tasks

    with pytest.raises(ValueError, match="tasks must be a sequence of task names"):
        sts_tasks("sts12")
    for bad in (0, 0.0, 1, 1.5, -0.2, True, "0.3"):
        with pytest.raises(ValueError, match="test_fraction must be a fraction strictly between 0 and 1"):
            data.load_images("digits", test_fraction=bad)
