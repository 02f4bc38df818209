"""Tests for edgeguard.faces.matching: Gallery.nearest against a brute-force search, and one real check."""

import numpy as np
import pytest
from conftest import LFW, lfw_photos

from edgeguard.config import RecognitionConfig
from edgeguard.faces.engine import FaceEngine
from edgeguard.faces.matching import Gallery, Match
from edgeguard.faces.photos import load_photo


def random_gallery(rng, n, people, scale=0.1, offset=0.0):
    """Encodings shaped like dlib's (values of about +-0.1, norm about 1), with owners."""
    encodings = (rng.normal(0.0, scale, size=(n, 128)) + offset).astype(np.float32)
    owners = rng.integers(0, people, size=n)
    return encodings, owners


def brute_force(encodings, owners, queries):
    """Nearest row for each query the slow, obvious way (float64)."""
    queries = np.asarray(queries, dtype=np.float32).reshape(-1, 128).astype(np.float64)
    gallery = encodings.astype(np.float64)
    distances = np.linalg.norm(gallery[None, :, :] - queries[:, None, :], axis=2)
    best = np.argmin(distances, axis=1)
    return owners[best], distances[np.arange(len(queries)), best], best


@pytest.mark.parametrize("seed,n,people", [(0, 50, 5), (1, 500, 40), (2, 2000, 300), (3, 7, 7)])
def test_nearest_equals_brute_force_for_many_queries(seed, n, people):
    rng = np.random.default_rng(seed)
    encodings, owners = random_gallery(rng, n, people)
    gallery = Gallery(encodings, owners)
    # Queries: some near a gallery row (a person seen again), some anywhere.
    near = encodings[rng.integers(0, n, size=20)] + rng.normal(0, 0.02, size=(20, 128))
    far = rng.normal(0.0, 0.1, size=(20, 128))
    queries = np.vstack([near, far]).astype(np.float32)
    matches = gallery.nearest(queries)
    want_owner, want_dist, _ = brute_force(encodings, owners, queries)
    assert len(matches) == len(queries)
    assert all(isinstance(m, Match) for m in matches)
    assert [m.owner for m in matches] == [int(o) for o in want_owner]
    np.testing.assert_allclose([m.distance for m in matches], want_dist, rtol=0, atol=1e-5)


def test_nearest_with_encodings_far_from_the_origin():
    """A large common offset makes |g|^2 - 2 g.q lose precision; the result must still be right."""
    rng = np.random.default_rng(7)
    encodings, owners = random_gallery(rng, 300, 30, offset=0.5)
    queries = (encodings[rng.integers(0, 300, size=15)] + rng.normal(0, 0.03, size=(15, 128))).astype(
        np.float32
    )
    matches = Gallery(encodings, owners).nearest(queries)
    want_owner, want_dist, _ = brute_force(encodings, owners, queries)
    assert [m.owner for m in matches] == [int(o) for o in want_owner]
    np.testing.assert_allclose([m.distance for m in matches], want_dist, rtol=0, atol=1e-5)


def test_single_128_vector_query():
    rng = np.random.default_rng(11)
    encodings, owners = random_gallery(rng, 100, 10)
    gallery = Gallery(encodings, owners)
    query = encodings[42] + rng.normal(0, 0.01, size=128)
    matches = gallery.nearest(query)
    assert len(matches) == 1
    want_owner, want_dist, best = brute_force(encodings, owners, query)
    assert best[0] == 42
    assert matches[0].owner == int(owners[42]) == int(want_owner[0])
    assert matches[0].distance == pytest.approx(float(want_dist[0]), abs=1e-5)
    # The same vector as a 1 x 128 array gives the same answer.
    assert gallery.nearest(query[None, :]) == matches


def test_query_equal_to_a_gallery_row_has_distance_zero():
    rng = np.random.default_rng(5)
    encodings, owners = random_gallery(rng, 64, 8)
    matches = Gallery(encodings, owners).nearest(encodings[[3, 17, 63]])
    assert [m.owner for m in matches] == [int(owners[3]), int(owners[17]), int(owners[63])]
    assert all(m.distance == pytest.approx(0.0, abs=1e-5) for m in matches)


def test_distances_are_exact_euclidean():
    rng = np.random.default_rng(3)
    encodings, owners = random_gallery(rng, 200, 20)
    queries = rng.normal(0, 0.1, size=(25, 128)).astype(np.float32)
    matches = Gallery(encodings, owners).nearest(queries)
    _, _, best = brute_force(encodings, owners, queries)
    for query, match, row in zip(queries, matches, best):
        exact = float(np.linalg.norm(encodings[row].astype(np.float64) - query.astype(np.float64)))
        assert abs(match.distance - exact) <= 1e-5
        assert isinstance(match.distance, float)


def test_owner_is_the_label_not_the_row():
    encodings = np.zeros((3, 128), dtype=np.float32)
    encodings[0, 0], encodings[1, 0], encodings[2, 0] = 0.0, 1.0, 2.0
    gallery = Gallery(encodings, np.array([7, 3, 9]))
    query = np.zeros(128, dtype=np.float32)
    query[0] = 1.9
    [match] = gallery.nearest(query)
    assert match.owner == 9
    assert match.distance == pytest.approx(0.1, abs=1e-5)


def test_empty_gallery_returns_no_owner_and_infinite_distance():
    gallery = Gallery(np.empty((0, 128), dtype=np.float32), np.array([], dtype=np.int64))
    assert len(gallery) == 0
    queries = np.random.default_rng(0).normal(0, 0.1, size=(3, 128))
    matches = gallery.nearest(queries)
    assert len(matches) == 3
    assert all(m.owner == -1 and m.distance == float("inf") for m in matches)
    [single] = gallery.nearest(queries[0])
    assert single.owner == -1 and single.distance == float("inf")


def test_no_queries_give_no_matches():
    rng = np.random.default_rng(1)
    encodings, owners = random_gallery(rng, 10, 2)
    assert Gallery(encodings, owners).nearest(np.empty((0, 128), dtype=np.float32)) == []


def test_owner_count_must_match_encoding_count():
    with pytest.raises(ValueError):
        Gallery(np.zeros((3, 128), dtype=np.float32), np.array([0, 1]))


def test_real_encodings_nearest_is_the_same_person():
    """Real dlib encodings of two LFW people: each held-apart photo's nearest is its own person."""
    engine = FaceEngine(RecognitionConfig())
    people = ["Tony_Blair", "Vladimir_Putin"]

    def encode(path):
        rgb = load_photo(path, 40_000_000)
        return engine.enrolment_encoding(rgb)

    encodings, owners, queries, truth = [], [], [], []
    for index, person in enumerate(people):
        photos = lfw_photos(person)
        assert photos and photos[0].parent.parent == LFW
        for photo in photos[:2]:
            encodings.append(encode(photo))
            owners.append(index)
        queries.append(encode(photos[2]))
        truth.append(index)
    gallery = Gallery(np.array(encodings), np.array(owners))
    matches = gallery.nearest(np.array(queries))
    assert [m.owner for m in matches] == truth
    want_owner, want_dist, _ = brute_force(np.array(encodings), np.array(owners), np.array(queries))
    np.testing.assert_allclose([m.distance for m in matches], want_dist, rtol=0, atol=1e-5)
    assert all(m.distance < 0.6 for m in matches)
