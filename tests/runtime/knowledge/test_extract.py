"""Extraction of txt, md, html, pdf and docx sources into sections, and its refusals."""

from __future__ import annotations

import io
import zipfile

import docx
import pytest
from fpdf import FPDF

from runtime.knowledge.extract import (
    MAX_DOCX_UNPACKED_BYTES,
    Document,
    KnowledgeInputError,
    Section,
    extract,
    from_text,
)

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def make_pdf(*pages: str, user_password: str | None = None, owner_password: str = "") -> bytes:
    """A PDF with one page per text ("" makes a blank page), optionally encrypted."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 10, text)
    if owner_password:
        pdf.set_encryption(owner_password=owner_password, user_password=user_password)
    return bytes(pdf.output())


def make_docx() -> bytes:
    document = docx.Document()
    document.add_paragraph("Handbook", style="Title")
    document.add_paragraph("Read this first.")
    document.add_heading("Refund policy", level=1)
    document.add_paragraph("Refunds are issued within 14 days.")
    document.add_heading("Exceptions", level=2)
    document.add_paragraph("Sale items are final.")
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, [("Plan", "Price"), ("Basic", "10 EUR")], strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    document.add_heading("Shipping", level=1)
    document.add_paragraph("Parcels leave within 2 days.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_a_pdf_has_one_section_per_page_numbered_from_one() -> None:
    content = make_pdf("Refunds are issued within 14 days.", "Shipping takes 3 days.")
    document = extract(name="policy.pdf", content=content)
    assert document.kind == "pdf"
    assert [section.page for section in document.sections] == [1, 2]
    assert "Refunds are issued within 14 days." in document.sections[0].text
    assert "Shipping takes 3 days." in document.sections[1].text
    assert all(section.heading is None for section in document.sections)


def test_pdf_pages_without_text_are_skipped() -> None:
    document = extract(name="policy.pdf", content=make_pdf("First page.", "", "Third page."))
    assert [(section.page, section.text) for section in document.sections] == [
        (1, "First page."),
        (3, "Third page."),
    ]


def test_a_pdf_locked_with_a_user_password_is_refused() -> None:
    content = make_pdf("Secret terms.", user_password="user", owner_password="owner")
    with pytest.raises(KnowledgeInputError) as caught:
        extract(name="refund.pdf", content=content)
    assert str(caught.value) == "refund.pdf is encrypted: upload an unprotected copy"


def test_a_pdf_encrypted_with_an_empty_user_password_is_read() -> None:
    content = make_pdf("Open terms.", owner_password="owner")
    document = extract(name="terms.pdf", content=content)
    assert document.sections == (Section(text="Open terms.", page=1),)


@pytest.mark.parametrize("cut", [50, 400, -120])
def test_a_damaged_pdf_is_refused_in_one_line(cut: int) -> None:
    content = make_pdf("Refunds are issued within 14 days.", "Shipping takes 3 days.")
    with pytest.raises(KnowledgeInputError) as caught:
        extract(name="broken.pdf", content=content[:cut])
    assert str(caught.value) == "broken.pdf could not be read as a PDF (it looks damaged)"


def test_a_pdf_without_text_may_be_scanned() -> None:
    with pytest.raises(KnowledgeInputError, match=r"^scan\.pdf has no text \(it may be scanned"):
        extract(name="scan.pdf", content=make_pdf("", ""))


def test_docx_headings_start_sections_and_tables_are_kept() -> None:
    document = extract(name="handbook.docx", content=make_docx())
    assert document.kind == "docx"
    assert [(section.heading, section.text) for section in document.sections] == [
        ("Handbook", "Read this first."),
        ("Handbook > Refund policy", "Refunds are issued within 14 days."),
        (
            "Handbook > Refund policy > Exceptions",
            "Sale items are final.\n\nPlan | Price\n\nBasic | 10 EUR",
        ),
        ("Handbook > Shipping", "Parcels leave within 2 days."),
    ]


def test_a_damaged_docx_is_refused() -> None:
    content = make_docx()
    with pytest.raises(KnowledgeInputError) as caught:
        extract(name="notes.docx", content=content[: len(content) // 2])
    assert str(caught.value) == "notes.docx could not be read as a Word document (it looks damaged)"


def test_a_docx_that_unpacks_too_large_is_refused_before_it_is_unpacked() -> None:
    """A zip bomb: a few hundred KB of zeros that unpack past the limit, inside a real DOCX."""
    packed = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(make_docx())) as source,
        zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as bomb,
    ):
        for item in source.infolist():
            bomb.writestr(item, source.read(item.filename))
        bomb.writestr("word/media/padding.bin", bytes(MAX_DOCX_UNPACKED_BYTES + 1))
    content = packed.getvalue()
    assert len(content) < MAX_DOCX_UNPACKED_BYTES // 100
    with pytest.raises(KnowledgeInputError) as caught:
        extract(name="bomb.docx", content=content)
    message = str(caught.value)
    assert message.startswith("bomb.docx unpacks to ")
    assert message.endswith(", over the limit of 100 MB for a Word document")


def test_markdown_headings_make_a_path_and_code_fences_are_not_headings() -> None:
    text = (
        "Welcome to the guide.\n\n"
        "# Setup\nInstall it.\n\n"
        "## Linux ##\n```sh\n# not a heading\napt install acme\n```\n\n"
        "## Windows\nRun the installer.\n"
        "#hashtag is text\n"
        "# Usage\nType a question.\n"
    )
    document = extract(name="guide.md", content=text.encode())
    assert document.kind == "markdown"
    assert [(section.heading, section.text) for section in document.sections] == [
        (None, "Welcome to the guide."),
        ("Setup", "Install it."),
        ("Setup > Linux", "```sh\n# not a heading\napt install acme\n```"),
        ("Setup > Windows", "Run the installer.\n#hashtag is text"),
        ("Usage", "Type a question."),
    ]


def test_html_drops_scripts_styles_navigation_and_head() -> None:
    page = b"""<!doctype html><html><head><title>Acme help</title>
    <style>body { color: red }</style><script>var secret = 1;</script></head>
    <body><nav><a href="/">Home</a> <a href="/shop">Shop</a></nav>
    <div>Fish &amp; chips &eacute;t&eacute;<br>every day.</div>
    <h2>Refunds</h2><p>Refunds take   14 days.</p><p>Keep the receipt.</p>
    <table><tr><th>Plan</th><th>Price</th></tr><tr><td>Basic</td><td>10</td></tr></table>
    <h3>Exceptions</h3><ul><li>Sale items</li><li>Gift cards</li></ul>
    <script>document.write("tracking")</script></body></html>"""
    document = extract(name="help.html", content=page)
    assert document.kind == "html"
    assert [(section.heading, section.text) for section in document.sections] == [
        ("Acme help", "Fish & chips été every day."),
        (
            "Acme help > Refunds",
            "Refunds take 14 days.\n\nKeep the receipt.\n\nPlan | Price\n\nBasic | 10",
        ),
        ("Acme help > Refunds > Exceptions", "Sale items\n\nGift cards"),
    ]


def test_html_with_an_h1_does_not_use_the_title_and_head_may_be_left_open() -> None:
    page = b"<html><head><title>Site</title><h1>Returns</h1><p>Within 30 days.</p>"
    document = extract(name="returns.htm", content=page)
    assert document.sections == (Section(text="Within 30 days.", heading="Returns"),)


def test_text_is_one_section_with_its_paragraphs() -> None:
    content = "\ufeffFirst paragraph\r\nstill first.\r\n\r\nSecond.".encode()
    document = extract(name="notes.txt", content=content)
    assert document == Document(
        name="notes.txt",
        kind="text",
        sections=(Section(text="First paragraph\nstill first.\n\nSecond."),),
    )


def test_text_falls_back_to_windows_1252() -> None:
    document = extract(name="menu.txt", content="Café au lait, 3 €".encode("cp1252"))
    assert document.sections[0].text == "Café au lait, 3 €"


def test_a_declared_charset_is_tried_after_utf8() -> None:
    content = "返品は14日以内".encode("shift_jis")
    document = extract(
        name="faq.txt", content=content, content_type="text/plain; charset=Shift_JIS"
    )
    assert document.sections[0].text == "返品は14日以内"


def test_binary_content_is_refused_as_text() -> None:
    with pytest.raises(KnowledgeInputError) as caught:
        extract(name="photo.txt", content=b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert str(caught.value) == "photo.txt looks like a binary file, not text"


@pytest.mark.parametrize("content", [b"", b"  \n\n\t \n", b"...\n----\n* * *"])
def test_an_empty_file_has_no_text(content: bytes) -> None:
    with pytest.raises(KnowledgeInputError) as caught:
        extract(name="empty.txt", content=content)
    assert str(caught.value) == "empty.txt has no text"


def test_size_is_checked_before_parsing() -> None:
    with pytest.raises(KnowledgeInputError) as caught:
        extract(name="big.pdf", content=b"not even a pdf" * 110, max_bytes=1024)
    assert str(caught.value) == "big.pdf is 1.5 KB; the limit is 1 KB"


def test_the_default_limit_is_named_in_megabytes() -> None:
    content = b"a" * (20 * 1024 * 1024 + 1)
    with pytest.raises(
        KnowledgeInputError, match=r"^big\.txt is more than 20 MB; the limit is 20 MB$"
    ):
        extract(name="big.txt", content=content)


def test_an_unknown_type_is_refused() -> None:
    with pytest.raises(KnowledgeInputError) as caught:
        extract(name="notes.xyz", content=b"hello", content_type="application/octet-stream")
    assert str(caught.value) == "notes.xyz: unsupported file type (use txt, md, html, pdf or docx)"


def test_the_extension_wins_over_the_content_type() -> None:
    document = extract(name="guide.md", content=b"# Title\nBody", content_type="text/plain")
    assert document.kind == "markdown"
    assert document.sections == (Section(text="Body", heading="Title"),)


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [("text/markdown; charset=utf-8", "markdown"), ("TEXT/HTML", "html"), ("text/plain", "text")],
)
def test_the_content_type_decides_without_an_extension(content_type: str, kind: str) -> None:
    document = extract(name="upload", content=b"# Title\nBody", content_type=content_type)
    assert document.kind == kind


def test_a_docx_is_recognised_by_its_content_type() -> None:
    document = extract(name="attachment", content=make_docx(), content_type=DOCX_TYPE)
    assert document.kind == "docx"


def test_from_text_makes_one_plain_section() -> None:
    document = from_text(name="typed note", text="  Opening hours: 9 to 5.\r\n")
    assert document == Document(
        name="typed note", kind="text", sections=(Section(text="Opening hours: 9 to 5."),)
    )


@pytest.mark.parametrize("text", [" \n ", "...", "?!"])
def test_from_text_refuses_blank_text(text: str) -> None:
    with pytest.raises(KnowledgeInputError, match=r"^typed note has no text$"):
        from_text(name="typed note", text=text)


def test_plain_text_headings_come_from_its_layout() -> None:
    content = (
        b"Licence Text\n============\n\n"
        b"1. Definitions\n--------------\n\n"
        b"1.1. Grants\n\nYou may copy it.\n\n"
        b"  5. Conveying Modified Source Versions.\n\n"
        b"You may convey a work based on the Program.\n\n"
        b"A short line, with a comma\n\nplain words that end here.\n"
    )
    sections = extract(name="licence.txt", content=content).sections
    assert [s.heading for s in sections] == [
        "Licence Text",
        "Licence Text > 1. Definitions",
        "Licence Text > 1. Definitions > 1.1. Grants",
        "Licence Text > 1. Definitions > 5. Conveying Modified Source Versions",
    ]
    assert [s.text for s in sections[:3]] == ["Licence Text", "1. Definitions", "You may copy it."]
    assert sections[3].text.startswith("You may convey a work")
    assert "A short line, with a comma" in sections[3].text  # not a title: it has a comma


def test_a_guessed_heading_loses_no_text() -> None:
    steps = b"1. Unplug the Power Cable\n\n2. Hold the Reset Button\n\nCall Support"
    document = extract(name="steps.txt", content=steps)
    assert [s.text for s in document.sections] == [
        "1. Unplug the Power Cable",
        "2. Hold the Reset Button",
        "Call Support",
    ]
    [alone] = extract(name="hours.txt", content=b"Opening Hours Are Nine To Five").sections
    assert alone.text == "Opening Hours Are Nine To Five"
