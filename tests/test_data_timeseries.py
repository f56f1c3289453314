"""Loaders of jaxcnn.data.timeseries on small files written by the tests."""

import numpy as np
import pytest

from jaxcnn.data.timeseries import (fill_missing, load_mnist1d, load_ucr, read_ts, read_tsv,
                                    resample, znormalize)

TS_UNI = """# a comment
@problemName toy
@timeStamps false
@univariate true
@classLabel true b a
@data
1,2,3,4:a
4,3,2,1:b

2,2,2,2:a
"""

TS_MULTI = """@problemName multi
@univariate false
@dimensions 2
@equalLength false
@classLabel true x y z
@data
1,2,3,4:5,6,7,8:x
0,?,2:1,1,1:z
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_read_ts_univariate(tmp_path):
    series, labels, names = read_ts(write(tmp_path, "toy_TRAIN.ts", TS_UNI))
    assert names == ("b", "a")  # the header's order, not sorted
    assert labels == ["a", "b", "a"]
    np.testing.assert_array_equal(series[1][:, 0], [4, 3, 2, 1])
    assert all(s.shape == (4, 1) and s.dtype == np.float32 for s in series)


def test_read_ts_multivariate_unequal_missing(tmp_path):
    series, labels, names = read_ts(write(tmp_path, "m_TRAIN.ts", TS_MULTI))
    assert names == ("x", "y", "z") and labels == ["x", "z"]
    assert series[0].shape == (4, 2) and series[1].shape == (3, 2)
    np.testing.assert_array_equal(series[0][:, 1], [5, 6, 7, 8])
    assert np.isnan(series[1][1, 0]) and not np.isnan(series[1][:, 1]).any()


def test_read_ts_labels_sorted_without_header_names(tmp_path):
    text = "@problemName t\n@data\n1,2:10\n3,4:2\n5,6:cat\n"
    _, _, names = read_ts(write(tmp_path, "t_TRAIN.ts", text))
    assert names == ("2", "10", "cat")  # numbers numerically, then strings


def test_read_tsv_nan_padding_and_missing(tmp_path):
    text = "1\t0.5\t1.5\t2.5\t3.5\n-1\t1.0\tNaN\t3.0\tNaN\tNaN\n1,7,8\n"
    series, labels, names = read_tsv(write(tmp_path, "v_TRAIN.tsv", text))
    assert labels == ["1", "-1", "1"] and names == ("-1", "1")
    assert [s.shape for s in series] == [(4, 1), (3, 1), (2, 1)]  # trailing NaN = shorter
    assert np.isnan(series[1][1, 0])  # interior NaN kept as missing


def test_fill_missing_znormalize_resample_by_hand():
    s = np.array([[np.nan, 1.0], [2.0, np.nan], [np.nan, 5.0], [6.0, np.nan]], np.float32)
    np.testing.assert_array_equal(fill_missing(s), [[2, 1], [2, 3], [4, 5], [6, 5]])
    z = znormalize(np.array([[1.0, 7.0], [2.0, 7.0], [6.0, 7.0]], np.float32))
    mu, sd = 3.0, np.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 3)
    np.testing.assert_allclose(z[:, 0], [(1 - mu) / sd, (2 - mu) / sd, (6 - mu) / sd], rtol=1e-6)
    np.testing.assert_array_equal(z[:, 1], 0.0)  # a constant channel is only centred
    r = resample(np.array([[0.0], [3.0], [6.0]], np.float32), 5)
    np.testing.assert_allclose(r[:, 0], [0, 1.5, 3, 4.5, 6])


def test_load_ucr_ts_resample_and_pad(tmp_path):
    write(tmp_path, "m_TRAIN.ts", TS_MULTI)
    write(tmp_path, "m_TEST.ts", TS_MULTI.replace("1,2,3,4:5,6,7,8:x", "1,2,3,4,5,6:1,2,3,4,5,6:y"))
    d = load_ucr("m", tmp_path, znorm=False)
    assert d.x_train.shape == (2, 4, 2) and d.x_test.shape == (2, 4, 2)
    assert d.y_train.tolist() == [0, 2] and d.y_test.tolist() == [1, 2]
    assert d.lengths_train.tolist() == [4, 3] and d.lengths_test.tolist() == [6, 3]
    # case 2: [0, ?, 2] -> filled [0, 1, 2] -> resampled to 4 points on [0, 2]
    np.testing.assert_allclose(d.x_train[1, :, 0], [0, 2 / 3, 4 / 3, 2], rtol=1e-6)
    np.testing.assert_allclose(d.x_test[0, :, 0], np.interp(np.linspace(0, 5, 4), range(6),
                                                            range(1, 7)), rtol=1e-6)
    p = load_ucr("m", tmp_path, znorm=False, variable_length="pad")
    assert p.x_train.shape == (2, 6, 2)  # the longest series of both splits
    np.testing.assert_array_equal(p.x_train[1, :, 1], [1, 1, 1, 0, 0, 0])
    z = load_ucr("m", tmp_path, znorm=True)
    np.testing.assert_allclose(z.x_train[0, :, 0], znormalize(np.arange(1.0, 5.0)[:, None])[:, 0])
    # "auto" (the default) leaves multivariate sets raw
    np.testing.assert_array_equal(load_ucr("m", tmp_path).x_train, d.x_train)
    with pytest.raises(ValueError, match="load_ucr: znorm must be True, False or 'auto', "
                                         "got 'yes'"):
        load_ucr("m", tmp_path, znorm="yes")
    with pytest.raises(ValueError, match="znorm must be True, False or 'auto', got 1"):
        load_ucr("m", tmp_path, znorm=1)  # 1 == True, but not a bool
    np.testing.assert_array_equal(load_ucr("m", tmp_path, znorm=np.True_).x_train, z.x_train)


def test_load_ucr_tsv_in_subfolder(tmp_path):
    (tmp_path / "v").mkdir()
    write(tmp_path / "v", "v_TRAIN.tsv", "2\t1\t2\t3\n1\t3\t2\t1\n")
    write(tmp_path / "v", "v_TEST.tsv", "1\t1\t1\t2\n")
    d = load_ucr("v", tmp_path)
    assert d.class_names == ("1", "2") and d.y_train.tolist() == [1, 0]
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int32
    np.testing.assert_allclose(d.x_train.mean(axis=1), 0, atol=1e-6)
    np.testing.assert_allclose(d.x_train.std(axis=1), 1, rtol=1e-5)


@pytest.mark.parametrize("text,match", [
    ("@classLabel true a b\n@data\n1,2,x3:a\n", "line 3 must be made of numbers.*'x3'"),
    ("@dimensions 2\n@classLabel true a b\n@data\n1,2:3,4:a\n1,2:b\n",
     "line 5 must be 2 dimension.*got '1 dimension"),
    ("@classLabel true a b\n@data\n1,2:a\n1,2:c\n", "label on line 4 must be one of a, b"),
    ("@classLabel true a\n@data\n1,2\n", "line 3 must be one or more"),
    ("@classLabel true a\n@data\n1,2:1,2,3:a\n", "dimensions on line 3 must be all of the same"),
    ("@classLabel true a\n1,2:a\n", "line 2 must be a '@' header"),
    ("@classLabel true a\n", "must be a .ts file with an @data line"),
    ("@classLabel true a\n@data\n", "at least one case"),
    ("@classLabel false\n@data\n1,2:0.5\n", "@classLabel must be true"),
    ("@timeStamps true\n@classLabel true a\n@data\n(0,1),(1,2):a\n", "timestamped"),
    # a line cut short, infinities, broken headers: each named by line or header key
    ("@data\n1,2,3:a\n4,5,6:\n", "label on line 3 must be a class label.*cut short"),
    ("@classLabel true a\n@data\n1,inf,3:a\n", "line 3 must be made of finite numbers.*'inf'"),
    ("@dimensions two\n@data\n1,2:a\n", "@dimensions must be a positive int, got 'two'"),
    ("@classLabel\n@data\n1,2:a\n", "@classLabel must be true followed by the class names"),
])
def test_read_ts_errors(tmp_path, text, match):
    with pytest.raises(ValueError, match=r"read_ts\(bad_TRAIN.ts\): (?s:.*)" + match):
        read_ts(write(tmp_path, "bad_TRAIN.ts", text))


@pytest.mark.parametrize("text,match", [
    ("1\t1\t2\n2\t1\tb\n", "line 2 must be made of numbers"),
    ("1\t1\t2\nNaN\t1\t2\n", "label on line 2 must be a number"),
    ("1\t1\t2\n1\n", "line 2 must be a label and at least one value"),
    ("1\tNaN\tNaN\n", "line 1 must be a series with at least one value"),
    ("\n", "at least one line"),
    ("1\t1\t-Infinity\n", "line 1 must be made of finite numbers"),
])
def test_read_tsv_errors(tmp_path, text, match):
    with pytest.raises(ValueError, match=r"read_tsv\(bad_TEST.tsv\): (?s:.*)" + match):
        read_tsv(write(tmp_path, "bad_TEST.tsv", text))


def test_load_ucr_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="TRAIN file of 'nope' must be"):
        load_ucr("nope", tmp_path)
    write(tmp_path, "a_TRAIN.tsv", "1\t1\t2\n2\t2\t1\n")
    write(tmp_path, "a_TEST.tsv", "3\t1\t2\n")
    with pytest.raises(ValueError, match=r"labels must be classes seen in TRAIN 1, 2, got \['3'\]"):
        load_ucr("a", tmp_path)
    write(tmp_path, "b_TRAIN.ts", "@classLabel true a\n@data\n1,2:a\n")
    write(tmp_path, "b_TEST.ts", "@classLabel true a\n@data\n1,2:3,4:a\n")
    with pytest.raises(ValueError, match="channel count must be 1 as in TRAIN, got 2"):
        load_ucr("b", tmp_path)
    with pytest.raises(ValueError, match="variable_length must be one of 'resample', 'pad'"):
        load_ucr("b", tmp_path, variable_length="crop")


def test_load_mnist1d_small_and_leaves_numpy_state():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    d = load_mnist1d(num_samples=200)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    assert d.x_train.shape == (160, 40, 1) and d.x_test.shape == (40, 40, 1)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int32
    assert set(d.y_train.tolist()) <= set(range(10)) and len(d.class_names) == 10
    np.testing.assert_array_equal(load_mnist1d(num_samples=200).x_test, d.x_test)  # deterministic
