"""The wire parsers: ninjs (and dpa digitalwires JSON) and NewsML-G2.

Real material under ../shared/data/wire (IPTC examples and validation suites, dpa
samples) when it is present, and small documents written here for each mapping rule.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from ingestion._model import ParseResult
from ingestion._sources.newsml import parse_newsml
from ingestion._sources.ninjs import parse_ninjs, validate_ninjs
from ingestion.exceptions import ParseError

from .conftest import SHARED

WIRE = SHARED / "data" / "wire"
NINJS = WIRE / "ninjs"
NEWSML = WIRE / "newsml-g2"
DPA = WIRE / "dpa-digitalwires" / "tests" / "data"
NOW = datetime(2026, 1, 1, 12, 0)
NAR = "http://iptc.org/std/nar/2006-10-01/"


def _files(base: Path, pattern: str) -> list:
    """Test parameters for the shared files, or one skipped parameter when they are absent."""
    if not base.is_dir():
        return [
            pytest.param(None, marks=[pytest.mark.shared, pytest.mark.skip(reason=f"{base} not present")])
        ]
    return [
        pytest.param(p, id=p.relative_to(base).as_posix(), marks=pytest.mark.shared)
        for p in sorted(base.glob(pattern))
    ]


def _key(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()


def ninjs(doc: object, **kwargs: object) -> ParseResult:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return parse_ninjs(body, source_id="wire", url="https://wire.example/feed", now=NOW, **kwargs)


def newsml(xml: str | bytes, **kwargs: object) -> ParseResult:
    body = xml.encode() if isinstance(xml, str) else xml
    return parse_newsml(body, source_id="wire", url="https://wire.example/feed", now=NOW, **kwargs)


# --- ninjs: the IPTC validation suite ---------------------------------------------------------

SUITE = NINJS / "validation" / "test_suite"

#: should_fail documents we accept, and why. Each is invalid only against an older release
#: of its generation than the one its property names allow; a document does not say which
#: release it follows, so it is checked against the latest one. ``validate_ninjs`` with the
#: release given does reject them (asserted below).
NINJS_ACCEPTED = {
    "1.0/should_fail/014_type_component.json": "type 'component' is valid from ninjs 1.2",
    "1.0/should_fail/016_infosource.json": "'infosource' exists from ninjs 1.2",
    "1.1/should_fail/001_type_component.json": "type 'component' is valid from ninjs 1.2",
    "1.1/should_fail/002_infosource.json": "'infosource' exists from ninjs 1.2",
    "3.0/should_fail/006_bad_urgency.json": (
        "{uri, urgency: 0.1} uses only names common to every generation, and urgency "
        "may be any number in 1.x and 2.x; only 3.x wants an integer 1-9"
    ),
}


def _suite_release(path: Path) -> str | None:
    release = path.relative_to(SUITE).parts[0]
    return None if release.endswith("_dev") else release


@pytest.mark.parametrize("path", _files(SUITE, "*/should_pass/*.json"))
def test_ninjs_suite_should_pass(path: Path) -> None:
    result = ninjs(path.read_bytes())
    assert len(result.items) == 1
    assert result.items[0].identity == json.loads(path.read_bytes())["uri"]
    assert validate_ninjs(json.loads(path.read_bytes()), _suite_release(path)) is None


@pytest.mark.parametrize("path", _files(SUITE, "*/should_fail/*.json"))
def test_ninjs_suite_should_fail(path: Path) -> None:
    key = _key(path, SUITE)
    if key in NINJS_ACCEPTED:
        assert ninjs(path.read_bytes()).items
    else:
        with pytest.raises(ParseError) as caught:
            ninjs(path.read_bytes())
        assert caught.value.message.startswith("ninjs")
    try:
        doc = json.loads(path.read_bytes())
    except ValueError:
        return  # several should_fail files are not JSON at all
    assert validate_ninjs(doc, _suite_release(path)) is not None


@pytest.mark.shared
def test_ninjs_accepted_list_names_real_files() -> None:
    if not SUITE.is_dir():
        pytest.skip(f"{SUITE} not present")
    assert all((SUITE / key).is_file() for key in NINJS_ACCEPTED)


# --- ninjs: examples and dpa digitalwires -------------------------------------------------------

EXAMPLES = NINJS / "examples"

#: Examples that are not usable ninjs, with a fragment of the reason given.
NINJS_EXAMPLES_REFUSED = {
    # The JSON Schema defining the extension, not a news item.
    "2.1/schema-extension/extension-schema.json": "'uri' is required",
    # A list of 14 objects, all breaking the 3.0 schema: "events" is an object instead of
    # an array and eventDetails.dates uses estimatedStartDate/estimatedEndDate, which no
    # ninjs release defines (3.x has expectedStartDate/expectedEndDate).
    "3.0/collection/20231016-event-timeline-sample.json": "none of the 14 items is usable",
}


@pytest.mark.parametrize("path", _files(EXAMPLES, "**/*.json"))
def test_ninjs_examples(path: Path) -> None:
    refused = NINJS_EXAMPLES_REFUSED.get(_key(path, EXAMPLES))
    if refused:
        with pytest.raises(ParseError, match=refused):
            ninjs(path.read_bytes())
        return
    result = ninjs(path.read_bytes())
    assert result.items and not result.rejections
    for item in result.items:
        assert item.identity and item.title
        assert item.wire["format"] == "ninjs"
        assert item.wire["ninjs_version"] == path.relative_to(EXAMPLES).parts[0][0]


@pytest.mark.parametrize("path", _files(DPA, "input/*.json"))
def test_dpa_digitalwires_json(path: Path) -> None:
    doc = json.loads(path.read_bytes())
    [item] = ninjs(path.read_bytes()).items
    assert item.identity == item.guid == doc["urn"]
    assert item.title == " ".join(doc["headline"].split())
    assert item.wire["format"] == "dpa-digitalwires"
    assert item.wire["version"] == str(doc["version"])
    if doc.get("article_html"):
        assert item.body
    if doc.get("signal"):
        assert doc["signal"] in item.wire["signals"]


@pytest.mark.parametrize("path", _files(DPA, "output/*.xml"))
def test_dpa_newsml_matches_its_json_source(path: Path) -> None:
    """dpa's converter turns each JSON input into NewsML-G2: both must read the same."""
    [from_json] = ninjs((DPA / "input" / f"{path.stem}.json").read_bytes()).items
    try:
        result = newsml(path.read_bytes())
    except ParseError as exc:
        assert "not a text item" in exc.message  # the picture and audio items
        return
    [from_xml] = result.items
    assert from_xml.identity == from_json.identity
    assert from_xml.title == from_json.title
    assert from_xml.summary == from_json.summary
    assert from_xml.language == from_json.language
    assert from_xml.updated_at == from_json.updated_at
    assert from_xml.withdrawn == from_json.withdrawn
    for key in ("version", "signals", "dateline"):
        assert from_xml.wire[key] == from_json.wire[key], key
    assert from_xml.body


# --- NewsML-G2: examples and the unit test files -------------------------------------------------

#: Examples holding a text newsItem; the others are pictures, videos, packages, concepts,
#: planning/knowledge/catalog items or bare fragments (groupSet, contentSet, contentMeta).
NEWSML_TEXT_EXAMPLES = {
    "LISTING_1_A_NewsML-G2_News_Item.xml",
    "LISTING_2_NewsML-G2_Text_Document.xml",
    "LISTING_21_A_complete_sample_SportsML-G2_document.xml",
    "LISTING_22_Sports_story_in_NewsML-G2NITF.xml",
    "LISTING_27_Company_Financial_Information.xml",
    "LISTING_29_Hop_History.xml",
    "Receiver View.xml",
    "facet-example.xml",
    "facet-example-2.xml",
    "facet-example-3.xml",
}
NOT_TEXT = r"not a text item|root element <\w+> is not|none of the \d+ items is usable"


@pytest.mark.parametrize("path", _files(NEWSML / "examples", "*.xml"))
def test_newsml_examples(path: Path) -> None:
    if path.name in NEWSML_TEXT_EXAMPLES:
        [item] = newsml(path.read_bytes()).items
        assert item.identity and item.wire["format"] == "newsml-g2"
    else:
        with pytest.raises(ParseError, match=NOT_TEXT):
            newsml(path.read_bytes())


UNIT = NEWSML / "tests" / "unit_test_files"


@pytest.mark.parametrize("path", _files(UNIT, "*/should_pass/*.xml"))
def test_newsml_unit_should_pass(path: Path) -> None:
    """Every valid file is read: a text item becomes an item, anything else is skipped."""
    try:
        result = newsml(path.read_bytes())
    except ParseError as exc:
        assert "not a text item" in exc.message or "root element <catalog>" in exc.message
        return
    [item] = result.items
    assert item.identity


#: should_fail files rejected by our own structural checks, with a fragment of the reason.
NEWSML_DETECTED = {
    "2.29/should_fail/001_incomplete_file.xml": "no itemMeta",
    "2.29/should_fail/002_newsitem_with_no_catalog.xml": "no catalogRef or catalog",
    "2.34/should_fail/CR00218_too_many_nested_related.xml": "nested more than three levels",
}
#: should_fail files whose fault needs the XSD, which we do not ship. Each is still
#: refused, for the reason given: none becomes an article.
NEWSML_REFUSED_OTHERWISE = {
    # an undeclared element in the NAR namespace inside organisationDetails (xs:any ##other)
    "2.12/should_fail/xsany-on-hasinstrument.xml": "not a text item",
    # schemeretired (from 2.29) on a scheme, in a bare catalog
    "2.28/should_fail/2.29_retiring_scheme_scheme.xml": "root element <catalog>",
    # schemeretired (from 2.29) on schemeMeta
    "2.28/should_fail/2.29_retiring_scheme_schememeta.xml": "not a text item",
    # residrefformaturi='%' is not a URI (an attribute datatype)
    "2.30/should_fail/CR00212_02_residrefformaturi_badly_formatted.xml": "not a text item",
    # hasInstrument on a concept is valid from 2.31, which the file declares
    "2.30/should_fail/CR00215_hasInstrument_on_concept.xml": "not a text item",
    # digitalSourceType is not allowed in a catalogItem's contentMeta
    "2.33/should_fail/digitalSourceType_catalogItem.xml": "not a text item",
}
#: should_fail files we accept, with the should_pass file they are byte-identical to:
#: they declare a later version than the schema the suite checks them against.
NEWSML_VALID_AS_DECLARED = {
    "2.28/should_fail/2.29_affiliation_org_org.xml": "2.29/should_pass/CR00208_affiliation_org_org.xml",
}


@pytest.mark.parametrize("path", _files(UNIT, "*/should_fail/*.xml"))
def test_newsml_unit_should_fail(path: Path) -> None:
    key = _key(path, UNIT)
    if key in NEWSML_VALID_AS_DECLARED:
        assert path.read_bytes() == (UNIT / NEWSML_VALID_AS_DECLARED[key]).read_bytes()
        [item] = newsml(path.read_bytes()).items
        assert item.identity
        return
    reason = NEWSML_DETECTED.get(key) or NEWSML_REFUSED_OTHERWISE.get(key)
    assert reason, f"{key}: new should_fail file, decide and list it"
    with pytest.raises(ParseError, match=reason):
        newsml(path.read_bytes())


@pytest.mark.shared
def test_newsml_from_ninjs_examples_is_newsml_1() -> None:
    if not (EXAMPLES / "NewsML").is_dir():
        pytest.skip("ninjs NewsML examples not present")
    for path in sorted((EXAMPLES / "NewsML").glob("*.xml")):
        with pytest.raises(ParseError, match=r"NewsML 1\.x"):
            newsml(path.read_bytes())


# --- ninjs: mapping, written here ---------------------------------------------------------------


def test_ninjs_1x_mapping() -> None:
    [item] = ninjs(
        {
            "uri": "https://news.example/2024/ship-trial",
            "type": "text",
            "version": "3",
            "firstcreated": "2024-03-01T10:00:00+01:00",
            "versioncreated": "2024-03-01T12:30:00Z",
            "pubstatus": "usable",
            "language": "en",
            "headline": "Captain on <b>trial</b>",
            "byline": "Jane Doe",
            "located": "Grosseto, Italy",
            "description_text": "The trial began.",
            "body_text": "Plain body.",
            "body_html": "<p>First paragraph.</p><figure><figcaption>Photo: AP</figcaption>"
            "</figure><p>Second paragraph.</p>",
            "subject": [
                {"name": "justice", "scheme": "http://cv.iptc.org/newscodes/mediatopic/", "code": "02000000"}
            ],
        }
    ).items
    assert item.identity == item.guid == "https://news.example/2024/ship-trial"
    assert item.link == item.url == "https://news.example/2024/ship-trial"
    assert item.title == "Captain on trial"
    assert item.summary == "The trial began."
    assert item.body == "First paragraph.\nSecond paragraph."
    assert item.byline == "Jane Doe"
    assert item.language == "en"
    assert item.published_at == datetime(2024, 3, 1, 9, 0)
    assert item.updated_at == datetime(2024, 3, 1, 12, 30)
    assert not item.withdrawn
    assert item.wire["format"] == "ninjs" and item.wire["ninjs_version"] == "1"
    assert item.wire["version"] == "3" and item.wire["pubstatus"] == "usable"
    assert item.wire["located"] == "Grosseto, Italy"
    assert item.wire["subjects"] == [
        {"code": "02000000", "name": "justice", "scheme": "http://cv.iptc.org/newscodes/mediatopic/"}
    ]
    assert item.issues == []


def test_ninjs_2x_mapping() -> None:
    [item] = ninjs(
        {
            "uri": "urn:ntb:8d19cf88",
            "version": "6",
            "firstcreated": "2019-08-09T09:30:04Z",
            "versioncreated": "2019-08-09T09:46:53Z",
            "pubstatus": "usable",
            "language": "nb-NO",
            "headlines": [
                {"role": "sub", "value": "Not this one"},
                {"role": "main", "value": "Google buys land in Skien"},
            ],
            "descriptions": [
                {"role": "writer", "value": "NTB"},
                {"role": "summary", "value": "A data centre is planned."},
            ],
            "bodies": [
                {"role": "text", "contenttype": "text/plain", "value": "Plain."},
                {
                    "role": "html",
                    "contenttype": "text/html",
                    "value": "<h1>Google buys land in Skien</h1><p>The deal is done.</p>",
                },
            ],
            "by": "NTB",
            "subjects": [{"uri": "http://cv.iptc.org/newscodes/mediatopic/04000000", "name": "economy"}],
            "places": [{"name": "Skien", "rel": "located"}],
        }
    ).items
    assert item.identity == "urn:ntb:8d19cf88"
    assert item.link is None and item.url is None  # a URN is not a web page
    assert item.title == "Google buys land in Skien"
    assert item.summary == "A data centre is planned."
    assert item.body == "The deal is done."  # HTML preferred, repeated headline dropped
    assert item.byline == "NTB"
    assert item.language == "nb-NO"
    assert item.published_at == datetime(2019, 8, 9, 9, 30, 4)
    assert item.updated_at == datetime(2019, 8, 9, 9, 46, 53)
    assert item.wire["ninjs_version"] == "2" and item.wire["version"] == "6"
    assert item.wire["located"] == "Skien"
    assert item.wire["subjects"] == [
        {"uri": "http://cv.iptc.org/newscodes/mediatopic/04000000", "name": "economy"}
    ]


def test_ninjs_3x_mapping_and_default_language() -> None:
    [item] = ninjs(
        {
            "uri": "http://tt.se/media/text/1",
            "type": "text",
            "version": "2",
            "firstCreated": "2023-10-05T12:10:33+02:00",
            "versionCreated": "2023-10-05T12:27:32+02:00",
            "pubStatus": "withheld",
            "urgency": 3,
            "headlines": [{"value": "Press conference at four"}],
            "descriptions": [{"role": "caption", "value": "The minister speaks."}],
            "bodies": [{"contentType": "text/plain", "value": "Line one.\nLine two."}],
            "by": "TT",
            "located": "Stockholm",
            "subjects": [{"literal": "POL", "name": "Politics"}],
        },
        default_language="sv",
    ).items
    assert item.title == "Press conference at four"
    assert item.summary == "The minister speaks."
    assert item.body == "Line one.\nLine two."
    assert item.language == "sv"
    assert item.published_at == datetime(2023, 10, 5, 10, 10, 33)
    assert item.withdrawn  # withheld: must not be used until further notice
    assert item.wire["pubstatus"] == "withheld"
    assert item.wire["ninjs_version"] == "3" and item.wire["urgency"] == 3
    assert item.wire["subjects"] == [{"code": "POL", "name": "Politics"}]


def test_ninjs_canceled_item_is_withdrawn() -> None:
    [item] = ninjs(
        {"uri": "urn:x:1", "version": "2", "pubstatus": "canceled", "headlines": [{"value": "Killed"}]}
    ).items
    assert item.withdrawn and item.wire["pubstatus"] == "canceled"


def test_ninjs_future_date_is_dropped_with_an_issue() -> None:
    [item] = ninjs(
        {
            "uri": "urn:x:1",
            "headline": "Hi",
            "firstcreated": "2030-01-01T00:00:00Z",
            "versioncreated": "not a date",
        }
    ).items
    assert item.published_at is None and item.updated_at is None
    assert any("in the future" in issue for issue in item.issues)
    assert any("not a date-time" in issue for issue in item.issues)


def test_ninjs_list_with_one_bad_item_keeps_the_others() -> None:
    result = ninjs(
        [
            {"uri": "urn:x:1", "headline": "Good"},
            {"uri": "urn:x:2", "headline": 42, "byline": "x"},
            "not an object",
            {"uri": "urn:x:3", "headlines": [{"value": "Also good"}]},
        ]
    )
    assert [item.identity for item in result.items] == ["urn:x:1", "urn:x:3"]
    assert [(r.index, r.identity) for r in result.rejections] == [(1, "urn:x:2"), (2, None)]
    assert result.rejections[0].reason == "ninjs 1.x: property 'headline' must be a string"
    assert "must be a JSON object" in result.rejections[1].reason


def test_ninjs_wrapper_object() -> None:
    result = ninjs({"items": [{"uri": "urn:x:1", "title": "One"}, {"uri": "urn:x:2"}]})
    assert [item.identity for item in result.items] == ["urn:x:1", "urn:x:2"]
    assert result.items[0].title == "One"
    assert result.items[1].issues == ["item has no headline, summary or text"]


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"headline": "no uri"}, "ninjs: 'uri' is required"),
        ({"uri": " ", "headline": "blank uri"}, "ninjs: 'uri' is empty"),
        ({"uri": "x", "headline": 5, "byline": "b"}, "ninjs 1.x: property 'headline' must be a string"),
        (
            {"uri": "x", "pubstatus": "cancelled", "headlines": []},
            "must be one of 'usable', 'withheld', 'canceled' (got 'cancelled')",
        ),
        ({"uri": "x", "headlines": [], "random": 1}, "unknown property 'random'"),
        ({"uri": "x", "bodies": [{"role": "main"}]}, "'bodies[0].value' is required"),
        (
            {"uri": "x", "urgency": 12, "versionCreated": "2024-01-01T00:00:00Z"},
            "ninjs 3.x: property 'urgency' must be at most 9 (got 12)",
        ),
        (
            {"uri": "x", "places": [{"name": "Oslo", "geojson": {"type": "Point", "coordinates": ["a", 1]}}]},
            "'places[0].geojson.coordinates' must be a GeoJSON position",
        ),
        (
            {"uri": "x", "places": [{"name": "Oslo", "geojson": {"type": ["Point"], "coordinates": [1, 2]}}]},
            "'places[0].geojson.type' must be a string naming a GeoJSON type",
        ),
        (
            {
                "uri": "x",
                "places": [{"name": "Oslo", "geoJSON": {"type": {}}}],
                "versionCreated": "2024-01-01",
            },
            "'places[0].geoJSON.type' must be a string naming a GeoJSON type",
        ),
        (
            {"uri": "x", "rightsinfo": {"linkedrights": "a", "encodedrights": "b"}, "headlines": []},
            "'rightsinfo' must have exactly one of",
        ),
        ([], "empty list"),
        ("just a string", "is a string, not an object or a list"),
    ],
)
def test_ninjs_refusals_say_why(doc: object, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        ninjs(doc)
    assert reason in caught.value.message
    assert caught.value.source_id == "wire"


@pytest.mark.parametrize("body", [b"", b"  \n", b"{not json", b'{"uri": NaN}', b"<rss/>"])
def test_ninjs_not_json(body: bytes) -> None:
    with pytest.raises(ParseError, match=r"ninjs: (empty document|not JSON)") as caught:
        ninjs(body)
    if body.strip():
        assert caught.value.__cause__ is not None


def test_ninjs_provider_extension_properties_are_tolerated_only_when_declared() -> None:
    doc = {
        "uri": "urn:x:1",
        "headlines": [{"value": "Hi"}],
        "signals": ["sig:update"],
        "links": [{"rel": "canonical", "href": "https://tt.se/a?utm_source=x"}],
    }
    with pytest.raises(ParseError, match=r"unknown property '(signals|links)'"):
        ninjs(doc)
    doc["standard"] = {
        "name": "ttninjs",
        "version": "2.1",
        "schema": "https://tt.se/spec/ttninjs/ttninjs-schema_2.1.json",
    }
    [item] = ninjs(doc).items
    assert item.wire["signals"] == ["sig:update"]
    assert (item.link, item.url) == ("https://tt.se/a?utm_source=x", "https://tt.se/a")
    assert item.issues == ["provider extension properties kept out: links, signals"]
    doc["headlines"] = "not a list"  # the standard properties are still checked
    with pytest.raises(ParseError, match="property 'headlines' must be an array"):
        ninjs(doc)


def test_validate_ninjs_with_a_release() -> None:
    doc = {"uri": "x", "type": "component"}
    assert validate_ninjs(doc) is None
    assert validate_ninjs(doc, "1.2") is None
    assert validate_ninjs(doc, "1.0") == (
        "ninjs 1.0: property 'type' must be one of 'text', 'audio', 'video', 'picture', "
        "'graphic', 'composite' (got 'component')"
    )
    # 2.0 allowed any association with a name; 2.1 wants a full ninjs object with a uri.
    named_only = {"uri": "x", "associations": [{"name": "logo", "anything": 1}]}
    assert validate_ninjs(named_only, "2.0") is None
    assert "associations[0]" in validate_ninjs(named_only, "2.1")


def test_dpa_digitalwires_mapping() -> None:
    [item] = ninjs(
        {
            "format": "digitalwires@0.9.1",
            "urn": "urn:newsml:dpa.com:20090101:1",
            "version": 1,
            "version_created": "2024-09-24T12:05:52+02:00",
            "pubstatus": "canceled",
            "signal": "sig:correction",
            "language": "de",
            "headline": "Schlagzeile",
            "teaser": "Der Vorspann.",
            "byline": "Von A. Autor, dpa",
            "dateline": "Berlin (dpa) - ",
            "article_html": '<section class="main"><p>Erster Absatz.</p></section>',
            "categories": [
                {"type": "dnltype:dpasubject", "name": "Politik", "qcode": "dpasubject:1"},
                {"type": "dnltype:signal", "name": "correction", "qcode": "sig:correction"},
            ],
        }
    ).items
    assert item.identity == "urn:newsml:dpa.com:20090101:1"
    assert (item.title, item.summary, item.body) == ("Schlagzeile", "Der Vorspann.", "Erster Absatz.")
    assert item.published_at == item.updated_at == datetime(2024, 9, 24, 10, 5, 52)
    assert item.withdrawn
    assert item.wire["version"] == "1"
    assert item.wire["signals"] == ["sig:correction"]
    assert item.wire["dateline"] == "Berlin (dpa) -"
    assert item.wire["subjects"] == [
        {"code": "dpasubject:1", "name": "Politik", "type": "dnltype:dpasubject"}
    ]


# --- NewsML-G2: mapping, written here ------------------------------------------------------------


CATALOG = '<catalogRef href="http://www.iptc.org/std/catalog/catalog.IPTC-G2-Standards_39.xml"/>'
VERSION_CREATED = "<versionCreated>2024-01-02T10:00:00+01:00</versionCreated>"


def news_item(
    guid: str = "urn:newsml:example.com:20240101:story",
    *,
    item_class: str = "ninat:text",
    meta: str = "",
    content: str = "",
    content_set: str = "",
    standard_version: str = "2.34",
    catalog: str = CATALOG,
    version_created: str = VERSION_CREATED,
    ns: bool = True,
) -> str:
    xmlns = f' xmlns="{NAR}"' if ns else ""
    return f"""<newsItem{xmlns} guid="{guid}" version="4" standard="NewsML-G2"
    standardversion="{standard_version}" xml:lang="en-GB">
  {catalog}
  <itemMeta>
    <itemClass qcode="{item_class}"/>
    <provider qcode="nprov:EXAMPLE"/>
    {version_created}
    {meta}
  </itemMeta>
  <contentMeta>{content}</contentMeta>
  <contentSet>{content_set}</contentSet>
</newsItem>"""


FULL_META = """
    <firstCreated>2024-01-01T08:00:00Z</firstCreated>
    <pubStatus qcode="stat:usable"/>
    <embargoed>2024-01-01T07:00:00Z</embargoed>
    <signal qcode="sig:update"/>
    <signal qcode="sig:correction"/>
    <link rel="irel:seeAlso" residref="urn:picture" href="https://cdn.example/pic.jpg"/>
    <link rel="irel:seeAlso" href="https://news.example/story?utm_source=wire"/>"""
FULL_CONTENT = """
    <urgency>3</urgency>
    <located qcode="geo:345678"><name>Berlin</name></located>
    <creator><name>Staff Desk</name></creator>
    <language tag="en-US"/>
    <subject type="cpnat:abstract" qcode="medtop:04000000"><name>economy</name></subject>
    <headline role="hld:subhead">Not the headline</headline>
    <headline>Fed to   halt QE</headline>
    <dateline>BERLIN, Monday (Example)</dateline>
    <by>By Meredith Jameson</by>
    <description role="drol:caption">Not the summary</description>
    <description role="drol:summary">The central bank acts.</description>"""
NITF = """<inlineXML contenttype="application/nitf+xml">
  <nitf xmlns="http://iptc.org/std/NITF/2006-10-18/"><body>
    <body.head><hedline><hl1>Fed to halt QE</hl1></hedline></body.head>
    <body.content>
      <p>(Berlin) First &amp; foremost.</p>
      <media media-type="image"><media-caption>A caption</media-caption></media>
      <p>Second <em>paragraph</em>.</p>
    </body.content>
  </body></nitf>
</inlineXML>"""


def test_newsml_news_item_mapping() -> None:
    [item] = newsml(news_item(meta=FULL_META, content=FULL_CONTENT, content_set=NITF)).items
    assert item.identity == item.guid == "urn:newsml:example.com:20240101:story"
    assert item.title == "Fed to halt QE"
    assert item.summary == "The central bank acts."
    assert item.body == "(Berlin) First & foremost.\nSecond paragraph."
    assert item.byline == "By Meredith Jameson"
    assert item.language == "en-US"
    assert item.link == "https://news.example/story?utm_source=wire"
    assert item.url == "https://news.example/story"
    assert item.published_at == datetime(2024, 1, 1, 8, 0)
    assert item.updated_at == datetime(2024, 1, 2, 9, 0)
    assert not item.withdrawn
    assert item.wire == {
        "format": "newsml-g2",
        "version": "4",
        "pubstatus": "stat:usable",
        "signals": ["sig:update", "sig:correction"],
        "subjects": [{"code": "medtop:04000000", "name": "economy", "type": "cpnat:abstract"}],
        "located": "Berlin",
        "dateline": "BERLIN, Monday (Example)",
        "item_class": "ninat:text",
        "urgency": 3,
        "embargoed": "2024-01-01T07:00:00Z",
    }
    assert item.issues == []


def test_newsml_xhtml_body_creator_byline_and_inherited_language() -> None:
    xhtml = """<inlineXML contenttype="application/xhtml+xml">
      <html xmlns="http://www.w3.org/1999/xhtml"><head><title>T</title></head><body>
        <header><h1>Headline</h1><p class="byline">By someone</p></header>
        <section class="main"><p>Body <span class="credit">(dpa)</span> text.</p></section>
      </body></html></inlineXML>"""
    [item] = newsml(
        news_item(
            content="<creator><name>Ann</name></creator><creator><name>Bo</name></creator>", content_set=xhtml
        )
    ).items
    assert item.body == "Body text."
    assert item.byline == "Ann, Bo"
    assert item.language == "en-GB"  # xml:lang of the item


def test_newsml_inline_data_body() -> None:
    data = '<inlineData contenttype="text/plain">Line one.\nLine two &amp; more.</inlineData>'
    [item] = newsml(news_item(content="<headline>H</headline>", content_set=data)).items
    assert item.body == "Line one.\nLine two & more."


def test_newsml_canceled_item_is_withdrawn() -> None:
    [item] = newsml(news_item(meta='<pubStatus qcode="stat:canceled"/>')).items
    assert item.withdrawn and item.wire["pubstatus"] == "stat:canceled"
    assert item.issues == ["item has no headline, summary or text"]


def test_newsml_future_first_created_is_dropped_with_an_issue() -> None:
    [item] = newsml(
        news_item(meta="<firstCreated>2031-05-01T00:00:00Z</firstCreated>", content="<headline>H</headline>")
    ).items
    assert item.published_at is None
    assert item.updated_at == datetime(2024, 1, 2, 9, 0)
    assert item.issues == ["published_at 2031-05-01T00:00:00 is in the future; ignored"]


def test_newsml_message_keeps_good_items_and_records_the_others() -> None:
    broken = f'<newsItem guid="urn:broken" xmlns="{NAR}"><contentMeta/></newsItem>'
    message = f"""<newsMessage xmlns="{NAR}">
      <header><sent>2024-01-02T10:00:00Z</sent></header>
      <itemSet>
        {news_item("urn:one", content="<headline>One</headline>")}
        {broken}
        {news_item("urn:photo", item_class="ninat:picture")}
      </itemSet>
    </newsMessage>"""
    result = newsml(message)
    assert [item.identity for item in result.items] == ["urn:one"]
    assert [(r.index, r.identity, r.reason) for r in result.rejections] == [
        (1, "urn:broken", "newsItem has no itemMeta"),
        (2, "urn:photo", "not a text item (itemClass ninat:picture)"),
    ]


def test_newsml_nothing_usable_is_a_parse_error() -> None:
    message = f"""<newsMessage xmlns="{NAR}"><itemSet>
        {news_item("urn:a", item_class="ninat:picture")}
        {news_item("urn:b", item_class="ninat:video")}
    </itemSet></newsMessage>"""
    with pytest.raises(ParseError, match=r"none of the 2 items is usable \(item 0: not a text"):
        newsml(message)
    with pytest.raises(ParseError) as caught:
        newsml(f'<packageItem xmlns="{NAR}" guid="p"/>')
    assert caught.value.message == "NewsML-G2: not a text item (packageItem)"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (
            """<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<newsItem xmlns="http://iptc.org/std/nar/2006-10-01/" guid="x">&lol4;</newsItem>""",
            "declares XML entities",
        ),
        (
            """<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<newsItem xmlns="http://iptc.org/std/nar/2006-10-01/" guid="x">&xxe;</newsItem>""",
            "declares XML entities",
        ),
        ("", "empty document"),
        ("<newsItem", "not well-formed XML"),
        ('{"uri": "x"}', "not well-formed XML"),
        ("<NewsML><NewsItem/></NewsML>", "NewsML 1.x"),
        ("<rss version='2.0'/>", "root element <rss> is not in the NewsML-G2 namespace"),
        (f'<newsMessage xmlns="{NAR}"><itemSet/></newsMessage>', "the newsMessage has no items"),
        (news_item(ns=False), "not in the NewsML-G2 namespace"),
    ],
)
def test_newsml_refusals_say_why(document: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason) as caught:
        newsml(document)
    assert caught.value.source_id == "wire" and caught.value.url == "https://wire.example/feed"


def test_newsml_structural_rules() -> None:
    with pytest.raises(ParseError, match=r"declares NewsML-G2 2\.29 but has no catalogRef"):
        newsml(news_item(standard_version="2.29", catalog=""))
    assert newsml(news_item(standard_version="2.30", catalog="")).items
    nested = "<subject qcode='a:b'>" + "<related qcode='c:d'>" * 4 + "</related>" * 4 + "</subject>"
    with pytest.raises(ParseError, match="nested more than three"):
        newsml(news_item(content=nested))
    assert newsml(
        news_item(content=nested.replace("<related qcode='c:d'>", "", 1).replace("</related>", "", 1))
    ).items
    with pytest.raises(ParseError, match="itemMeta has no versionCreated"):
        newsml(news_item(version_created=""))


@pytest.mark.parametrize("urgency", ["\u00b2", "1" * 5000, "12", "-1"])
def test_newsml_urgency_outside_its_digits_is_none_not_a_lost_message(urgency: str) -> None:
    content = FULL_CONTENT.replace("<urgency>3</urgency>", f"<urgency>{urgency}</urgency>").replace(
        '<headline role="hld:subhead">', '<headline role="hld:subhead" rank="\u00b9">'
    )
    [item] = newsml(news_item(meta=FULL_META, content=content, content_set=NITF)).items
    assert item.wire["urgency"] is None and item.title == "Fed to halt QE"


def test_ninjs_refuses_what_json_has_no_place_for() -> None:
    for body in (b'{"uri": "urn:a", "headline": "x \\ud800 y"}', b'{"uri": "urn:a", "urgency": NaN}'):
        with pytest.raises(ParseError, match="not JSON"):
            parse_ninjs(body, source_id="wire", url="https://wire.example/feed", now=NOW)
    marked = "\ufeff" + json.dumps({"uri": "urn:a", "headline": "With a byte order mark"})
    [item] = ninjs(marked.encode()).items
    assert item.title == "With a byte order mark"


def test_ninjs_1x_body_does_not_follow_the_order_of_its_keys() -> None:
    """A wire that sends the same version with its keys in another order sends no revision."""
    forms = {"body_xhtml": "<p>Ferry timetable, as filed.</p>", "body_html": "<p>Ferry timetable.</p>"}
    bodies = {
        ninjs({"uri": "urn:x:1", "type": "text", "headline": "Ferries", **dict(order)}).items[0].body
        for order in (list(forms.items()), list(reversed(forms.items())))
    }
    assert bodies == {"Ferry timetable."}


def test_the_order_of_a_ninjs_1x_item_s_keys_picks_neither_its_page_nor_its_headline() -> None:
    """A wire may list an item's properties in another order in its next delivery: the same
    item, which must read the same (else each delivery records a revision). 1.x names its
    renditions and headline variants: they are taken by name, an AMP page after the page."""
    page = {"href": "https://wire.example/stories/1.html", "mimetype": "text/html"}
    amp = {"href": "https://wire.example/amp/stories/1.html", "mimetype": "text/html"}
    short, extended = "Talks begin", "Talks begin in Geneva after a year of preparation"
    base = {"uri": "urn:wire:r", "body_text": "Delegates met in Geneva."}
    orders = [
        {
            **base,
            "renditions": {"web": page, "amp": amp},
            "headline_short": short,
            "headline_extended": extended,
        },
        {
            **base,
            "headline_extended": extended,
            "headline_short": short,
            "renditions": {"amp": amp, "web": page},
        },
    ]
    items = [ninjs(doc).items[0] for doc in orders]
    assert {(item.url, item.title) for item in items} == {(page["href"], extended)}
