"""Output names (runs/naming.py, runs/photos.py): safe, distinct, and the same from run to run."""
import shutil
from pathlib import Path

import pytest

from p2p_real.errors import P2PError
from p2p_real.runs.naming import distinct, edit_folder_name, given_name, inside, names_in_folder, sanitize, slug
from p2p_real.runs.photos import find_photos

DATA = Path(__file__).parent.parent.parent / "data" / "photos"


def test_photos_that_share_a_stem_get_distinct_names_that_do_not_depend_on_order():
    files = ["cat.png", "cat-png.png", "cat.jpg", "dog.jpg"]
    names = names_in_folder(files)
    assert names["dog.jpg"] == "dog" and names["cat.jpg"] == "cat-jpg"
    assert names["cat.png"].startswith("cat-png-") and names["cat-png.png"].startswith("cat-png-")
    assert len(set(names.values())) == 4
    assert names_in_folder(list(reversed(files))) == names
    # Case-blind, as file systems that fold case would see them
    assert len({name.casefold() for name in names_in_folder(["Cat.JPG", "cat.jpg", "CAT.png"]).values()}) == 3


def test_names_are_one_safe_folder():
    assert sanitize("../../x", "photo") == "x" and sanitize("..", "photo") == "photo"
    assert sanitize(".bashrc", "photo") == "bashrc"
    assert sanitize("café au lait", "photo") == "cafe-au-lait" and sanitize("🐱", "photo") == "photo"
    assert slug("A close-up photo of a DOG!") == "a-close-up-photo-of-a-dog" and slug("🐶") == "edit"
    assert distinct(["cat", "Cat", "dog"], ["/a/cat.jpg", "/b/Cat.jpg", "/a/dog.jpg"])[2] == "dog"
    assert len(set(distinct(["cat", "cat"], ["/a/cat.jpg", "/b/cat.jpg"]))) == 2


def test_edit_folders_differ_with_anything_that_changes_the_pixels():
    swap = edit_folder_name("a photo of a dog", {"blend_words": None})
    blended = edit_folder_name("a photo of a dog", {"blend_words": ["cat", "dog"]})
    assert swap.startswith("a-photo-of-a-dog-") and blended.startswith("a-photo-of-a-dog-") and swap != blended
    assert edit_folder_name("a photo of a dog", {"blend_words": None}) == swap  # stable
    assert edit_folder_name("🐶", {}) != edit_folder_name("🐱", {})  # both slug to "edit"


@pytest.mark.parametrize("name", ["../../x", "/tmp/x", "a/b", "..", "a\\b", "."])
def test_an_edit_name_that_is_a_path_is_refused_with_one_line(name):
    with pytest.raises(P2PError, match="is a path; give a plain folder name"):
        given_name(name)


def test_given_names_are_kept_made_safe():
    assert given_name("cat-to-dog") == "cat-to-dog" and given_name("my edit") == "my-edit"
    assert given_name("🐶") != given_name("🐱")


def test_inside_keeps_every_path_in_the_output_folder(tmp_path):
    assert inside(tmp_path, "chelsea", "edit") == tmp_path / "chelsea" / "edit"
    for names in (("..",), ("a", ".."), ("a/../../b",), ("",)):
        with pytest.raises(P2PError, match="would leave the output folder"):
            inside(tmp_path, *names)


def test_found_photos_keep_their_names_whether_run_alone_or_with_their_folder(tmp_path):
    for source, name in (("chelsea.jpg", "cat.png"), ("coffee.jpg", "cat-png.png"), ("rocket.jpg", "cat.jpg")):
        shutil.copy(DATA / source, tmp_path / name)
    together = {photo.path.name: photo.name for photo in find_photos([str(tmp_path)], "a photo")}
    assert len(set(together.values())) == 3
    for file_name, name in together.items():
        [alone] = find_photos([str(tmp_path / file_name)], "a photo")
        assert alone.name == name
    # The same photo given twice is one photo; two folders' photos of one name get two folders
    assert len(find_photos([str(tmp_path), str(tmp_path / "cat.jpg")], "a photo")) == 3
    (tmp_path / "other").mkdir()
    shutil.copy(DATA / "chelsea.jpg", tmp_path / "other" / "cat.jpg")
    both = find_photos([str(tmp_path / "cat.jpg"), str(tmp_path / "other" / "cat.jpg")], "a photo")
    assert len({photo.name for photo in both}) == 2
