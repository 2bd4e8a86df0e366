// The hash chain without files: lines made with chain_line, checked with
// ChainVerifier after deleting, changing, reordering and cutting lines.
#include "monitor/audit_chain.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sg::monitor {
namespace {

using json = nlohmann::json;
using Files = std::vector<std::vector<std::string>>;

std::vector<std::string> make_lines(int n, ChainLink link = {}) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string line = chain_line(
        {{"time", 1700000000 + i}, {"event", "received"}, {"id", "m" + std::to_string(i)}}, link);
    link = link_after(line);
    out.push_back(line);
  }
  return out;
}

// Feeds files (the last line of the last file complete unless `torn`).
ChainVerifier check(const Files& files, bool torn = false) {
  ChainVerifier v;
  for (std::size_t f = 0; f < files.size(); ++f) {
    v.begin_file(f);
    for (std::size_t i = 0; i < files[f].size(); ++i)
      v.feed(files[f][i], !(torn && f + 1 == files.size() && i + 1 == files[f].size()));
  }
  return v;
}

TEST(AuditChain, IntactChainVerifies) {
  auto lines = make_lines(6);
  EXPECT_EQ(json::parse(lines[0])["prev"], zero_hash());
  EXPECT_EQ(json::parse(lines[0])["seq"], 1);
  EXPECT_EQ(json::parse(lines[1])["prev"], line_hash(lines[0]));
  auto v = check({lines});
  EXPECT_TRUE(v.ok()) << v.result()->what;
  EXPECT_EQ(v.lines(), 6u);
  EXPECT_EQ(v.first_seq(), 1u);
  EXPECT_EQ(v.last_seq(), 6u);
  EXPECT_TRUE(v.from_start());
}

TEST(AuditChain, HashIsBlake2b256OfTheLineBytes) {
  // Same as Python's hashlib.blake2b(b"abc", digest_size=32).hexdigest().
  EXPECT_EQ(line_hash("abc"), "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
  EXPECT_EQ(line_hash("").size(), 64u);
}

TEST(AuditChain, DeletedLineIsFound) {
  auto lines = make_lines(6);
  lines.erase(lines.begin() + 2);  // seq 3
  auto b = check({lines}).result();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->line, 3u);
  EXPECT_NE(b->what.find("1 line missing"), std::string::npos) << b->what;
  EXPECT_NE(b->what.find("from 2 to 4"), std::string::npos) << b->what;
}

TEST(AuditChain, EditedLineIsFound) {
  auto lines = make_lines(6);
  auto pos = lines[2].find("\"m2\"");
  lines[2].replace(pos, 4, "\"mX\"");
  auto b = check({lines}).result();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->line, 3u);
  EXPECT_NE(b->what.find("changed"), std::string::npos) << b->what;
}

TEST(AuditChain, EditedSeqIsFound) {
  auto lines = make_lines(4);
  json j = json::parse(lines[3]);
  j["seq"] = 9;  // keeps prev: only the number was changed
  lines[3] = j.dump();
  auto b = check({lines}).result();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->line, 4u);
  EXPECT_NE(b->what.find("changed"), std::string::npos) << b->what;
}

TEST(AuditChain, ReorderedLinesAreFound) {
  auto lines = make_lines(6);
  std::swap(lines[2], lines[3]);
  auto b = check({lines}).result();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->line, 3u);
  EXPECT_NE(b->what.find("out of order"), std::string::npos) << b->what;

  lines = make_lines(6);
  std::rotate(lines.begin() + 1, lines.begin() + 2, lines.begin() + 5);  // seq 2 moved later
  b = check({lines}).result();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->line, 2u);
  EXPECT_NE(b->what.find("out of order"), std::string::npos) << b->what;
}

TEST(AuditChain, TruncatedLastLineIsFound) {
  auto lines = make_lines(3);
  lines[2].resize(lines[2].size() / 2);
  auto b = check({lines}, true).result();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->line, 3u);
  EXPECT_NE(b->what.find("truncated"), std::string::npos);
  // Cut mid-line and then written after (a torn write): not a record.
  lines.push_back(make_lines(1)[0]);
  b = check({lines}).result();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->line, 3u);
}

TEST(AuditChain, ChainRunsAcrossFiles) {
  auto lines = make_lines(9);
  Files files = {{lines.begin(), lines.begin() + 4}, {lines.begin() + 4, lines.end()}};
  EXPECT_TRUE(check(files).ok());
  // The oldest file was rotated away: still intact, not from the start.
  auto v = check({files[1]});
  EXPECT_TRUE(v.ok());
  EXPECT_FALSE(v.from_start());
  EXPECT_EQ(v.first_seq(), 5u);
  // Files in the wrong order, or one missing in between.
  auto b = check({files[1], files[0]}).result();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->file, 1u);
  EXPECT_EQ(b->line, 1u);
  Files gap = {{lines.begin(), lines.begin() + 3}, {lines.begin() + 5, lines.end()}};
  b = check(gap).result();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->file, 1u);
  EXPECT_NE(b->what.find("gap between files"), std::string::npos) << b->what;
  // The last line of the older file was changed.
  files[0][3].replace(files[0][3].find("\"m3\""), 4, "\"m9\"");
  b = check(files).result();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->file, 1u);
  EXPECT_NE(b->what.find("does not continue"), std::string::npos) << b->what;
}

TEST(AuditChain, NewChainInTheMiddleIsFound) {
  auto a = make_lines(3), b = make_lines(2);
  a.insert(a.end(), b.begin(), b.end());
  auto r = check({a}).result();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->line, 4u);
  EXPECT_NE(r->what.find("new log"), std::string::npos) << r->what;
}

TEST(AuditChain, ForeignLinesAreNotRecords) {
  for (const char* bad : {"", "not json", "[1]", "{\"event\":\"x\"}", "{\"seq\":1,\"prev\":\"zz\"}",
                          "{\"seq\":-1,\"prev\":\"00\"}"}) {
    auto r = check({{bad}}).result();
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->line, 1u);
  }
}

TEST(AuditChain, WorkerRecordsAreChecked) {
  EXPECT_TRUE(parse_worker_record(R"({"event":"received","id":"x"})"));
  EXPECT_FALSE(parse_worker_record(R"({"event":"received","prev":"00"})"));
  EXPECT_FALSE(parse_worker_record(R"({"event":"received","seq":4})"));
  EXPECT_FALSE(parse_worker_record(R"({"id":"no event"})"));
  EXPECT_FALSE(parse_worker_record(R"({"event":""})"));
  EXPECT_FALSE(parse_worker_record(R"(["event"])"));
  EXPECT_FALSE(parse_worker_record("{\"event\":\"x\"} trailing"));
  EXPECT_FALSE(parse_worker_record("{\"event\":\"\xff\"}"));  // not UTF-8
  std::string deep = "{\"event\":\"x\",\"a\":" + std::string(40, '[') + std::string(40, ']') + "}";
  EXPECT_FALSE(parse_worker_record(deep));
  std::string nested_in_string = "{\"event\":\"" + std::string(40, '[') + "\"}";
  EXPECT_TRUE(parse_worker_record(nested_in_string));
  std::string big = "{\"event\":\"x\",\"a\":\"" + std::string(kMaxRecordBytes, 'a') + "\"}";
  EXPECT_FALSE(parse_worker_record(big));
}

TEST(AuditChain, ChainLineNeverThrowsOnBadUtf8) {
  std::string line = chain_line({{"event", "x"}, {"mail_from", "\xff\xfe@example.com"}}, {});
  EXPECT_TRUE(parse_record(line));
}

}  // namespace
}  // namespace sg::monitor
