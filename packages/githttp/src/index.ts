export { serveGitHttp, type GitHttpServer, type GitRequest } from "./server.js";
export { commitToBareRepo, type CommitOptions, type RepoFile } from "./repo.js";
