import numpy as np
import pytest

from mnist_pipeline import datasets, inputs, prepared, splitting

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def real_train(raw_mnist_dir):
    return datasets.DATASETS["mnist"].read_split(raw_mnist_dir, "train")


def test_real_mnist_has_the_published_class_counts(raw_mnist_dir, real_train):
    _, test_labels = datasets.DATASETS["mnist"].read_split(raw_mnist_dir, "test")
    assert np.bincount(real_train[1]).tolist() == TRAIN_COUNTS
    assert np.bincount(test_labels).tolist() == TEST_COUNTS


def test_normalize_gives_float32_images_in_unit_range(real_train):
    images = inputs.scaled(real_train[0][:1000])
    assert images.dtype == np.float32 and images.shape == (1000, 28, 28, 1)
    assert images.min() == 0.0 and images.max() == 1.0
    np.testing.assert_allclose(images * 255, real_train[0][:1000])


@pytest.mark.parametrize("fraction", [0.1, 0.25])
def test_split_is_stratified_disjoint_and_complete(real_train, fraction):
    labels = real_train[1]
    train, val = splitting.stratified_split(labels, fraction, seed=5)
    assert len(np.intersect1d(train, val)) == 0
    assert len(train) + len(val) == len(labels)
    assert abs(len(val) / len(labels) - fraction) < 0.001
    overall = np.bincount(labels, minlength=10) / len(labels)
    for part in (train, val):
        proportions = np.bincount(labels[part], minlength=10) / len(part)
        assert np.abs(proportions - overall).max() < 0.01  # within 1 percentage point per class


def test_same_seed_same_split_other_seed_other_split(real_train):
    labels = real_train[1]
    first, again, other = (splitting.stratified_split(labels, 0.1, seed)[1] for seed in (5, 5, 6))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_subset_keeps_pairs_together_and_zero_means_all():
    x, y = np.arange(100) * 10, np.arange(100)
    sub_x, sub_y = prepared.take_subset(x, y, 30, seed=1)
    assert len(sub_y) == 30 and np.array_equal(sub_x, sub_y * 10)
    assert prepared.take_subset(x, y, 0, seed=1)[1] is y


def test_rows_read_what_numpy_reads_and_write_what_np_save_writes(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (50, 6, 5, 3), dtype=np.uint8)
    (tmp_path / "rows.npy").write_bytes(prepared.npy_header(images.shape) + images.tobytes())
    np.save(tmp_path / "saved.npy", images)
    assert (tmp_path / "rows.npy").read_bytes() == (tmp_path / "saved.npy").read_bytes()
    rows = prepared.Rows(tmp_path / "rows.npy")
    assert (len(rows), rows.shape, rows.dtype) == (50, images.shape, np.uint8)
    mask = images[:, 0, 0, 0] > 128
    for index in (7, -1, slice(3, 9), slice(None, None, 4), [4, 5, 6, 20], np.array([9, 2, 2]), mask, []):
        np.testing.assert_array_equal(rows[index], images[index])
    with pytest.raises(IndexError):
        rows[[3, 50]]
    with open(tmp_path / "rows.npy", "r+b") as file:  # a split cut short (a full disk, a copy that stopped)
        file.truncate(file.seek(0, 2) - 1)
    with pytest.raises(prepared.RowsError, match="not a C-ordered array"):
        prepared.Rows(tmp_path / "rows.npy")


def _file_pages_mb():
    with open("/proc/self/status") as lines:
        status = dict(line.split(":", 1) for line in lines)
    return int(status["RssFile"].split()[0]) / 1024


def test_reading_every_row_leaves_no_page_of_the_file_counted_as_the_process_memory(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (16_000, 64, 64, 1), dtype=np.uint8)  # 64 MB
    np.save(tmp_path / "images.npy", images)
    del images
    mapped = np.load(tmp_path / "images.npy", mmap_mode="r")
    before = _file_pages_mb()
    total = sum(int(mapped[start:start + 500].sum()) for start in range(0, len(mapped), 500))
    assert _file_pages_mb() - before > 32  # a memory map keeps what it touched: the check can see it
    del mapped
    rows = prepared.Rows(tmp_path / "images.npy")
    before = _file_pages_mb()
    assert sum(int(rows[start:start + 500].sum()) for start in range(0, len(rows), 500)) == total
    assert _file_pages_mb() - before < 4
