"""Which links the API accepts, and the canonical form it hands to workers."""
import pytest

from api.links import LinkRefused, check_link
from shared.service.settings import Settings

DEFAULT = Settings()


@pytest.mark.parametrize("url", [
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
    "https://youtube.com/watch?v=dQw4w9WgXcQ&list=PL0123&t=42",
    "https://m.youtube.com/watch?v=dQw4w9WgXcQ",
    "https://youtu.be/dQw4w9WgXcQ?si=abc",
    "https://www.youtube.com/shorts/dQw4w9WgXcQ",
    "https://music.youtube.com/watch?v=dQw4w9WgXcQ&feature=share",
    "https://WWW.YOUTUBE.COM./watch?v=dQw4w9WgXcQ",
])
def test_youtube_video_links_become_one_canonical_watch_url(url):
    link = check_link(url, DEFAULT)
    assert link.url == "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert link.content_key == "youtube:dQw4w9WgXcQ"


@pytest.mark.parametrize("url, reason", [
    ("", "non-empty"),
    (42, "non-empty"),
    ("not a link", "http"),
    ("file:///etc/passwd", "http"),
    ("https://user:pw@www.youtube.com/watch?v=dQw4w9WgXcQ", "password"),
    ("https://www.youtube.com/watch?v=short", "single video"),
    ("https://www.youtube.com/@somechannel", "single video"),
    ("http://127.0.0.1:5000/song.mp3", "not allowed"),
    ("http://[::1]/song.mp3", "not allowed"),
    ("https://youtube.com.evil.example/watch?v=dQw4w9WgXcQ", "not allowed"),
    ("https://www.youtube.com:99999/watch?v=dQw4w9WgXcQ", "valid"),
    ("https://www.youtube.com/watch?v=" + "a" * 3000, "too long"),
])
def test_other_links_are_refused_with_a_reason(url, reason):
    with pytest.raises(LinkRefused, match=reason):
        check_link(url, DEFAULT)


def test_an_extra_allowed_host_is_passed_through_unchanged():
    settings = Settings(allowed_url_hosts="youtu.be,127.0.0.1")
    link = check_link("http://127.0.0.1:8080/a.mp3", settings)
    assert link.url == "http://127.0.0.1:8080/a.mp3" and link.content_key is None
