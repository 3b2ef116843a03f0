// Tests common/curve.h: key files and authorised keys (Z85 keys may hold '#').
#include "common/curve.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace drover {
namespace {

TEST(Curve, KeyPairsRoundTripAndAuthorizedKeysAllowHashes) {
  char dir[] = "/tmp/drover-curve-test-XXXXXX";
  std::string base = mkdtemp(dir);
  absl::StatusOr<CurveKeyPair> written = WriteNewKeyPair(base + "/a");
  ASSERT_TRUE(written.ok()) << written.status();
  absl::StatusOr<CurveKeyPair> read = ReadKeyPair(base + "/a.key");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->secret_key, written->secret_key);
  EXPECT_EQ(*ReadPublicKey(base + "/a.pub"), written->public_key);
  EXPECT_EQ(WriteNewKeyPair(base + "/a").status().code(), absl::StatusCode::kAlreadyExists);

  std::ofstream(base + "/authorized") << "# workers\n" << written->public_key << "  laptop\n"
                                      << "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID\n";
  absl::StatusOr<std::set<std::string>> keys = ReadAuthorizedKeys(base + "/authorized");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 2u);
  EXPECT_TRUE(keys->contains(written->public_key));

  std::ofstream(base + "/bad") << "not a key\n";
  EXPECT_EQ(ReadAuthorizedKeys(base + "/bad").status().code(), absl::StatusCode::kInvalidArgument);
  std::filesystem::remove_all(base);
}

TEST(Curve, AKeyWithAHashIsNotMistakenForAComment) {
  char dir[] = "/tmp/drover-curve-test-XXXXXX";
  std::string base = mkdtemp(dir);
  // Make keys until one contains '#', then authorise it.
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<CurveKeyPair> pair = WriteNewKeyPair(base + "/k" + std::to_string(i));
    ASSERT_TRUE(pair.ok());
    if (pair->public_key.find('#') == std::string::npos) continue;
    std::ofstream(base + "/authorized") << pair->public_key << "\n";
    absl::StatusOr<std::set<std::string>> keys = ReadAuthorizedKeys(base + "/authorized");
    ASSERT_TRUE(keys.ok()) << keys.status();
    EXPECT_TRUE(keys->contains(pair->public_key));
    break;
  }
  std::filesystem::remove_all(base);
}

}  // namespace
}  // namespace drover
